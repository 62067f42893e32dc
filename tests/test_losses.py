import numpy as np
import pytest
import tensorflow as tf

from stylekeras import losses

rng = np.random.default_rng(0)


def test_gram_matrix_matches_numpy():
    features = rng.normal(size=(1, 5, 7, 4)).astype(np.float32)
    flat = features[0].reshape(-1, 4)  # M × N
    np.testing.assert_allclose(losses.gram_matrix(features)[0], flat.T @ flat, rtol=1e-5)


def test_content_loss_is_half_sum_of_squares():
    a, b = rng.normal(size=(2, 1, 3, 3, 8)).astype(np.float32)
    np.testing.assert_allclose(losses.content_loss(a, b), 0.5 * np.sum((a - b) ** 2), rtol=1e-5)


def test_layer_style_loss_is_the_papers_formula_for_equal_sizes():
    generated, style = rng.normal(size=(2, 1, 6, 5, 3)).astype(np.float32)
    n, m = 3, 6 * 5
    g = generated[0].reshape(m, n).T @ generated[0].reshape(m, n)
    a = style[0].reshape(m, n).T @ style[0].reshape(m, n)
    expected = np.sum((g - a) ** 2) / (4 * n**2 * m**2)
    got = losses.layer_style_loss(generated, losses.normalized_gram(style))
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_layer_style_loss_ignores_image_size_for_the_same_texture():
    tile = rng.normal(size=(1, 4, 4, 3)).astype(np.float32)
    small, large = tile, np.tile(tile, (1, 3, 3, 1))
    assert float(losses.layer_style_loss(large, losses.normalized_gram(small))[0]) == pytest.approx(0.0, abs=1e-9)


def test_ring_share_is_the_share_of_positions_on_the_outermost_ring():
    assert float(losses.ring_share(6, 5)) == pytest.approx(1 - 4 * 3 / 30)
    assert float(losses.ring_share(tf.constant(64), tf.constant(48))) == pytest.approx(1 - 62 * 46 / (64 * 48))
    assert float(losses.ring_share(2, 5)) == float(losses.ring_share(1, 1)) == 1.0  # no interior


def test_ring_mask_marks_the_first_and_last_rows_and_columns():
    expected = np.ones((5, 6), np.float32)
    expected[1:-1, 1:-1] = 0
    np.testing.assert_array_equal(losses.ring_mask(5, 6)[0, :, :, 0], expected)
    assert float(tf.reduce_mean(losses.ring_mask(6, 5))) == pytest.approx(float(losses.ring_share(6, 5)))
    np.testing.assert_array_equal(losses.ring_mask(2, 3), np.ones((1, 2, 3, 1)))


@pytest.mark.parametrize("height, width", [(6, 5), (3, 3), (2, 4), (1, 1)])
def test_ring_gram_is_the_gram_matrix_under_the_ring_mask(height, width):
    features = rng.normal(size=(2, height, width, 3)).astype(np.float32)
    np.testing.assert_allclose(losses.ring_gram(features),
                               losses.normalized_gram(features, losses.ring_mask(height, width)), rtol=1e-5)


def test_gram_for_ring_share_gives_the_outermost_ring_the_share_asked_for():
    features = rng.normal(size=(2, 6, 5, 3)).astype(np.float32)
    ring = np.ones((6, 5), bool)
    ring[1:-1, 1:-1] = False
    on_ring, inside = (features[:, part].reshape(2, -1, 3) for part in (ring, ~ring))
    average = lambda flat: np.einsum("bki,bkj->bij", flat, flat) / flat.shape[1]  # noqa: E731
    gram, ring_gram = losses.normalized_gram(features), losses.ring_gram(features)
    np.testing.assert_allclose(ring_gram, average(on_ring), rtol=1e-5)
    own = losses.ring_share(6, 5)
    for share in (0.0, 0.1, 0.3, 0.9):
        np.testing.assert_allclose(losses.gram_for_ring_share(gram, ring_gram, own, share),
                                   (1 - share) * average(inside) + share * average(on_ring), rtol=1e-4, atol=1e-6)
    # At the map's own share the Gram matrix is unchanged; without an interior it is unchanged whatever the share.
    np.testing.assert_allclose(losses.gram_for_ring_share(gram, ring_gram, own, own), gram, rtol=1e-5)
    thin = rng.normal(size=(1, 2, 5, 3)).astype(np.float32)
    thin_gram = losses.normalized_gram(thin)
    np.testing.assert_allclose(losses.gram_for_ring_share(thin_gram, thin_gram, losses.ring_share(2, 5), 0.2),
                               thin_gram, rtol=1e-6)


def test_style_loss_weights_layers():
    features = {"a": rng.normal(size=(1, 4, 4, 2)).astype(np.float32), "b": rng.normal(size=(1, 2, 2, 3)).astype(np.float32)}
    targets = {name: tf.zeros((1, value.shape[-1], value.shape[-1])) for name, value in features.items()}
    each = {name: float(losses.layer_style_loss(features[name], targets[name])[0]) for name in features}
    got = losses.style_loss(features, targets, {"a": 0.25, "b": 2.0})
    np.testing.assert_allclose(got, 0.25 * each["a"] + 2.0 * each["b"], rtol=1e-5)


def test_total_variation_matches_numpy():
    image = rng.uniform(size=(1, 5, 6, 3)).astype(np.float32)
    expected = np.sum(np.diff(image, axis=1) ** 2) + np.sum(np.diff(image, axis=2) ** 2)
    np.testing.assert_allclose(losses.total_variation_loss(image), expected, rtol=1e-5)


def test_total_variation_gradient_is_the_formulas_per_image():
    images = tf.Variable(rng.uniform(size=(2, 5, 6, 3)).astype(np.float32))
    weights = np.array([0.5, 3.0], np.float32)  # each image's upstream gradient: the batch's losses weighted apart
    with tf.GradientTape() as tape:
        weighted = tf.reduce_sum(weights * losses.total_variation_loss(images))
    got = tape.gradient(weighted, images).numpy()
    x = images.numpy()
    expected = np.zeros_like(x)
    for axis in (1, 2):  # d/dx_i Σ_k (x_{k+1} − x_k)² = 2 (x_i − x_{i−1}) − 2 (x_{i+1} − x_i), zero beyond the edges
        difference = np.diff(x, axis=axis)
        before, after = [(0, 0)] * 4, [(0, 0)] * 4
        before[axis], after[axis] = (1, 0), (0, 1)
        expected += 2 * (np.pad(difference, before) - np.pad(difference, after))
    np.testing.assert_allclose(got, weights[:, None, None, None] * expected, rtol=1e-5, atol=1e-6)
    for index in [(1, 2, 3, 1), (0, 0, 0, 0), (1, 4, 5, 2)]:  # central differences inside and at two corners
        plus, minus = x.astype(np.float64), x.astype(np.float64)  # float64: a float32 sum cancels to noise
        plus[index] += 1e-2
        minus[index] -= 1e-2
        numeric = (losses.total_variation_loss(plus) - losses.total_variation_loss(minus))[index[0]] / 2e-2
        assert weights[index[0]] * float(numeric) == pytest.approx(got[index], rel=1e-3)


def test_temporal_loss_is_the_masked_mean_square_per_frame():
    images = rng.uniform(size=(2, 5, 6, 3)).astype(np.float32)
    warped = rng.uniform(size=(2, 5, 6, 3)).astype(np.float32)
    consistency = (rng.uniform(size=(2, 5, 6, 1)) > 0.5).astype(np.float32)
    expected = [np.sum(consistency[i] * (images[i] - warped[i]) ** 2) / (5 * 6 * 3) for i in range(2)]
    np.testing.assert_allclose(losses.temporal_loss(images, warped, consistency), expected, rtol=1e-5)


def test_total_loss_combines_with_weights():
    assert float(losses.total_loss(2.0, 3.0, 5.0, 1.0, 10.0, 100.0)) == pytest.approx(2 + 30 + 500)


def test_every_loss_has_one_value_per_image_of_a_batch():
    features = rng.normal(size=(2, 4, 5, 3)).astype(np.float32)
    targets = rng.normal(size=(2, 4, 5, 3)).astype(np.float32)
    style = losses.normalized_gram(rng.normal(size=(1, 6, 6, 3)).astype(np.float32))
    mask = rng.uniform(size=(1, 4, 5, 1)).astype(np.float32)
    batched = {
        "content": losses.content_loss(features, targets),
        "style": losses.layer_style_loss(features, style),
        "masked style": losses.layer_style_loss(features, style, mask),
        "tv": losses.total_variation_loss(features),
    }
    for index in range(2):
        alone = {
            "content": losses.content_loss(features[index:index + 1], targets[index:index + 1]),
            "style": losses.layer_style_loss(features[index:index + 1], style),
            "masked style": losses.layer_style_loss(features[index:index + 1], style, mask),
            "tv": losses.total_variation_loss(features[index:index + 1]),
        }
        for name, values in batched.items():
            assert values.shape == (2,)
            np.testing.assert_allclose(values[index], alone[name][0], rtol=1e-5, err_msg=name)


def test_gram_matrix_is_the_sum_of_outer_products():
    features = tf.random.stateless_normal([2, 5, 3, 4], seed=[1, 2])
    mask = tf.random.stateless_uniform([2, 5, 3, 1], seed=[3, 4])
    expected = tf.einsum("bhwi,bhwj->bij", features * mask, features)
    np.testing.assert_allclose(losses.gram_matrix(features, mask), expected, rtol=1e-5)
    np.testing.assert_allclose(losses.gram_matrix(features), tf.einsum("bhwi,bhwj->bij", features, features), rtol=1e-5)
