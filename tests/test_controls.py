"""Each quality control shows its effect on tiny images (hed weights where the effect needs trained ones)."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import stylekeras
from stylekeras import color, losses, stylize
from stylekeras.errors import StyleKerasError
from stylekeras.image_io import load_image
from stylekeras.optimizers import FIRST_STEP_RMS, LBFGS, Adam, adam_minimize, lbfgs_minimize
from stylekeras.stylize import _Average, style_size

DATA = __import__("pathlib").Path(__file__).parent / "data"
STYLE2 = DATA / "style2.png"  # Matisse, Woman with a Hat (public domain in the US), 48×64


def test_lbfgs_solves_a_quadratic():
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(6, 6))
    matrix = tf.constant(basis @ basis.T + 6 * np.eye(6), tf.float32)
    target = tf.constant(rng.normal(size=6), tf.float32)
    x = tf.Variable(tf.zeros(6))
    optimizer = LBFGS(history=5)
    optimizer.build([x])

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = 0.5 * tf.tensordot(x, tf.linalg.matvec(matrix, x), 1) - tf.tensordot(target, x, 1)
        optimizer.apply_gradients([(tape.gradient(loss, x), x)])

    for _ in range(30):
        step()
    np.testing.assert_allclose(x.numpy(), np.linalg.solve(matrix.numpy(), target.numpy()), atol=1e-4)


@pytest.mark.parametrize("restart_at", [None, 4])
def test_lbfgs_steps_by_the_two_loop_recursion_over_the_newest_pairs(restart_at):
    """Past its first step, each step is −H·g over the newest `history` (s, y) pairs (Nocedal & Wright,
    Algorithm 7.4), here recomputed in numpy from the iterates and gradients; after a restart, over the pairs
    since, though the older ones are still in the ring."""
    rng = np.random.default_rng(5)
    basis = rng.normal(size=(12, 12))
    matrix = basis @ basis.T + 12 * np.eye(12)
    x = tf.Variable(rng.normal(size=12).astype(np.float32))
    optimizer = LBFGS(history=3)
    optimizer.build([x])
    iterates, gradients = [], []
    for step in range(10):
        if step == restart_at:  # the safeguard gives up on the last step: back to the point before it
            assert optimizer.safeguard(x, tf.constant(-1.0), lambda: ({"total": tf.constant(1.0)}, None)) is None
            iterates, gradients = [], []
        gradient = (matrix @ x.numpy()).astype(np.float32)  # of ½ xᵀAx
        iterates.append(x.numpy().astype(np.float64))
        gradients.append(gradient.astype(np.float64))
        optimizer.apply_gradients([(tf.constant(gradient), x)])
        assert np.isfinite(x.numpy()).all()  # else the reference below, computed from the iterates, is NaN too
        if len(iterates) == 1:
            continue  # the first step is a scaled steepest-descent one
        pairs = [(iterates[k + 1] - iterates[k], gradients[k + 1] - gradients[k]) for k in range(len(iterates) - 1)][-3:]
        q, alphas = gradients[-1], []
        for s, y in reversed(pairs):
            alphas.append(s @ q / (s @ y))
            q = q - alphas[-1] * y
        r = (pairs[-1][0] @ pairs[-1][1]) / (pairs[-1][1] @ pairs[-1][1]) * q
        for (s, y), alpha in zip(pairs, reversed(alphas)):
            r = r + (alpha - y @ r / (s @ y)) * s
        np.testing.assert_allclose(x.numpy() - iterates[-1], -r, rtol=1e-3, atol=1e-4 * np.abs(r).max())


@pytest.mark.parametrize("tolerated_rise, shortened", [(1.0, True), (1.05, False)])
def test_lbfgs_safeguard_shortens_a_step_that_raises_the_loss(tolerated_rise, shortened):
    # f(x) = x² from x = 1 with a first step that overshoots to x = −1.015: the loss rises by 3 %.
    x = tf.Variable([1.0])
    loss = lambda: ({"total": tf.reduce_sum(tf.square(x))}, 2.0 * x)  # noqa: E731
    optimizer = LBFGS(tolerated_rise=tolerated_rise, first_step_rms=2.015)
    optimizer.build([x])
    optimizer.apply_gradients([(tf.constant([1.0]), x)])
    parts, _ = optimizer.safeguard(x, tf.constant(1.0), loss)
    assert (float(parts["total"]) < 1.0) is shortened  # a halved step lands near the minimum
    assert float(parts["total"]) == pytest.approx(float(tf.reduce_sum(tf.square(x))))  # the accepted point's loss


def test_lbfgs_safeguard_restarts_from_the_point_before_a_step_that_never_lowers_the_loss():
    # f(x) = x² from x = 1 with a gradient of the wrong sign: every shortened step still raises the loss.
    x = tf.Variable([1.0])
    loss = lambda: ({"total": tf.reduce_sum(tf.square(x))}, 2.0 * x)  # noqa: E731
    optimizer = LBFGS()
    optimizer.build([x])
    optimizer.apply_gradients([(tf.constant([-1.0]), x)])
    assert optimizer.safeguard(x, tf.constant(1.0), loss) is None
    assert float(x[0]) == 1.0
    assert int(optimizer.iterations) == 0 and int(optimizer.count) == 0  # the next step is a first step again


def test_lbfgs_after_giving_up_on_a_first_step_the_next_first_step_is_shorter():
    """Else the same first step from the same point fails at every step, and the run stands still."""
    x = tf.Variable([1.0])
    loss = lambda: ({"total": tf.reduce_sum(tf.square(x))}, 2.0 * x)  # noqa: E731
    optimizer = LBFGS(first_step_rms=100.0)  # f(x) = x² from x = 1 to −99: at 1/8 of it, still −11.5
    optimizer.build([x])
    optimizer.apply_gradients([(tf.constant([2.0]), x)])
    assert optimizer.safeguard(x, tf.constant(1.0), loss) is None and float(x[0]) == 1.0
    optimizer.apply_gradients([(tf.constant([2.0]), x)])  # 1/16 of the first: to −5.25, then halved
    parts, _ = optimizer.safeguard(x, tf.constant(1.0), loss)
    assert float(parts["total"]) < 1.0 and float(x[0]) == pytest.approx(-0.5625)


def test_lbfgs_first_step_moves_the_variable_by_first_step_rms_down_the_gradient():
    """Not torch's min(1, 1/‖g‖₁)·g, which moves an image of many pixels by less than a grey level."""
    x = tf.Variable(tf.random.stateless_uniform([1, 64, 48, 3], seed=[3, 4]))
    gradient = tf.random.stateless_normal(x.shape, seed=[5, 6]) * 1e4
    start = x.numpy()
    optimizer = LBFGS(learning_rate=0.5)
    optimizer.build([x])
    optimizer.apply_gradients([(gradient, x)])
    change = x.numpy() - start
    assert np.sqrt(np.mean(change**2)) == pytest.approx(0.5 * FIRST_STEP_RMS, rel=1e-4)
    np.testing.assert_allclose(change, -gradient.numpy() * (change.ravel() @ -gradient.numpy().ravel())
                               / np.sum(gradient.numpy()**2), rtol=1e-3, atol=1e-7)


def test_lbfgs_first_step_on_a_zero_gradient_leaves_the_variable_as_it_is():
    x = tf.Variable([0.25, 0.5])
    optimizer = LBFGS()
    optimizer.build([x])
    optimizer.apply_gradients([(tf.zeros(2), x)])
    np.testing.assert_array_equal(x.numpy(), [0.25, 0.5])


@pytest.mark.parametrize("kind", ["lbfgs", "adam"])
def test_the_in_graph_loops_take_the_steps_optimize_takes(kind, monkeypatch):
    """`lbfgs_minimize` and `adam_minimize` (the served stylizer's loops) against `stylize.optimize` with the
    library's optimizer, on a wiggly loss, from near its minimum with first steps far too long: L-BFGS's
    safeguard shortens steps and gives first steps up (each next one shorter), and the loop must follow it
    evaluation by evaluation, the last step's checked with the loss alone in both."""
    rng = np.random.default_rng(2)
    target = tf.constant(rng.random((1, 4, 4, 3)) * 0.5 + 0.25, tf.float32)
    start = target + tf.constant(rng.normal(size=(1, 4, 4, 3)) * 0.05, tf.float32)

    calls, loss_calls = tf.Variable(0), tf.Variable(0)  # evaluations, counted in the graph too

    def loss(image):
        total = tf.reduce_sum(tf.square(image - target) + 0.2 * tf.cos(200.0 * image), axis=[1, 2, 3])
        return {"total": total, "twice": 2 * total}

    def evaluate(image):
        calls.assign_add(1)
        with tf.GradientTape() as tape:
            tape.watch(image)
            parts = loss(image)
        return parts, tape.gradient(parts["total"], image)

    def loss_alone(image):
        loss_calls.assign_add(1)
        return loss(image)

    image = tf.Variable(start)
    optimizer = LBFGS(5, first_step_rms=100.0) if kind == "lbfgs" else Adam(0.02)
    optimizer.build([image])
    evaluations, loss_evaluations, give_ups, recorded = [], [], [], []
    safeguard = LBFGS.safeguard

    def counted_safeguard(*args):
        accepted = safeguard(*args)
        give_ups.append(accepted is None)
        return accepted

    monkeypatch.setattr(LBFGS, "safeguard", counted_safeguard)
    stylize.optimize(image, lambda step: evaluations.append(step) or evaluate(tf.convert_to_tensor(image)), optimizer,
                     range(12), recorded.append,
                     lambda step: loss_evaluations.append(step) or loss_alone(tf.convert_to_tensor(image)))
    if kind == "lbfgs":
        assert sum(give_ups) == 3 and len(evaluations) > 12 + 3 * 4  # steps shortened, three given up on
        assert loss_evaluations and set(loss_evaluations) == {12}
        loop = lambda: lbfgs_minimize(evaluate, start, 12, 5, 1.0, ("total", "twice"), first_step_rms=100.0,  # noqa: E731
                                      loss=loss_alone)
    else:
        loop = lambda: adam_minimize(evaluate, start, 12, 0.02, ("total", "twice"))  # noqa: E731
    calls.assign(0)
    loss_calls.assign(0)
    served, done, last = tf.function(loop)()
    np.testing.assert_allclose(served.numpy(), image.numpy(), atol=1e-6)
    assert int(done) == 12 and int(calls) == len(evaluations) and int(loss_calls) == len(loss_evaluations)
    assert {name: float(value[0]) for name, value in last.items()} == pytest.approx(
        {name: float(value[0]) for name, value in recorded[-1].items()})


def test_adam_is_keras_adam():
    gradients = tf.random.stateless_normal([5, 4, 4, 3], seed=[1, 2])
    ours, theirs = tf.Variable(tf.ones([4, 4, 3])), tf.Variable(tf.ones([4, 4, 3]))
    adam, keras_adam = Adam(0.02), keras.optimizers.Adam(0.02)
    adam.build([ours])
    keras_adam.build([theirs])
    for gradient in gradients:
        adam.apply_gradients([(gradient, ours)])
        keras_adam.apply_gradients([(gradient, theirs)])
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=0, atol=1e-6)


def test_lbfgs_reaches_a_lower_loss_than_adam_in_the_same_steps(hed_stylizer, content_path, style_path):
    run = lambda optimizer: hed_stylizer.transfer(content_path, style_path, size=48, steps=30, optimizer=optimizer)
    assert run("lbfgs").history["total"][-1] < 0.8 * run("adam").history["total"][-1]


def test_multiscale_output_size_and_schedule(random_stylizer, content_path, style_path):
    result = random_stylizer.transfer(content_path, style_path, size=40, scales=3, start_size=10, steps=4)
    assert result.image.shape == (40, 40, 3)
    assert list(result.history["size"]) == [10] * 4 + [20] * 2 + [40] * 2  # half the first scale's steps at each finer one
    assert result.steps_done == 8
    with pytest.raises(StyleKerasError, match="`start_size=64` must be between 1 and `size=40`"):
        random_stylizer.transfer(content_path, style_path, size=40, scales=2, start_size=64)


def test_moving_average_is_bias_corrected():
    image = tf.Variable(tf.fill([1, 2, 2, 3], 4.0))
    average = _Average(image, 0.9)
    average.update()
    np.testing.assert_allclose(average.value(), 4.0, rtol=1e-6)  # one sample: the sample, not 0.4
    image.assign(tf.fill([1, 2, 2, 3], 2.0))
    average.update()
    np.testing.assert_allclose(average.value(), (0.9 * 0.1 * 4 + 0.1 * 2) / (0.9 * 0.1 + 0.1), rtol=1e-6)


def test_averaged_iterates_change_the_result_and_decay_zero_is_the_last_iterate(random_stylizer, content_path, style_path):
    run = lambda average: random_stylizer.transfer(content_path, style_path, size=24, steps=6, init="noise",
                                                   average=average).image
    plain, last, averaged = run(None), run(0.0), run(0.9)
    np.testing.assert_allclose(last, plain, atol=1e-6)
    assert np.abs(averaged - plain).mean() > 1e-3


def test_average_pooling_keeps_activation_magnitude(content_path):
    pixels = load_image(content_path)[None]
    means = {}
    for pooling in ("max", "avg"):
        stylizer = stylekeras.Stylizer(weights="hed", style_layers=["block3_conv1"], content_layers=["block3_conv1"],
                                       pooling=pooling)
        means[pooling] = float(tf.reduce_mean(stylizer.model(pixels)["block3_conv1"]))
        assert any("pool" in layer.name and type(layer).__name__ == ("MaxPooling2D" if pooling == "max" else
                   "ScaledAveragePooling") for layer in stylizer.model.layers)
    assert 0.5 < means["avg"] / means["max"] < 2.0


@pytest.mark.parametrize("padding", ["reflect", "replicate"])
def test_edge_padding_changes_only_the_border(content_path, padding):
    pixels = load_image(content_path, 16)[None]
    features = {}
    for mode in ("zero", padding):
        stylizer = stylekeras.Stylizer(weights="hed", style_layers=["block1_conv1"], content_layers=["block1_conv1"],
                                       padding=mode)
        features[mode] = stylizer.model(pixels)["block1_conv1"].numpy()
    assert features[padding].shape == features["zero"].shape
    np.testing.assert_allclose(features[padding][:, 1:-1, 1:-1], features["zero"][:, 1:-1, 1:-1], rtol=1e-5, atol=1e-3)
    assert np.abs(features[padding][:, 0] - features["zero"][:, 0]).max() > 1.0


def _gram_distance(stylizer, image, style):
    """Style loss of `image` against `style`'s Gram matrices on the default layers, with the paper's weights
    (balanced weights would depend on `image`'s own features)."""
    targets = stylizer.targets(image, [style], normalization="paper")
    features = stylizer.model(image[None])
    return float(losses.style_loss(features, targets.styles[0].grams, targets.layer_weights)[0])


def test_blended_styles_land_between_the_single_style_results(hed_stylizer, content_path, style_path):
    first, second = load_image(style_path, 48), load_image(STYLE2, 48)
    run = lambda styles, blend=None: hed_stylizer.transfer(content_path, styles, size=48, steps=40,
                                                           optimizer="lbfgs", style_blend=blend).image
    only_first, only_second, blended = run(style_path), run(STYLE2), run([style_path, STYLE2], (0.5, 0.5))
    to_first = [_gram_distance(hed_stylizer, image, first) for image in (only_first, blended, only_second)]
    to_second = [_gram_distance(hed_stylizer, image, second) for image in (only_first, blended, only_second)]
    assert to_first[0] < to_first[1] < to_first[2]
    assert to_second[2] < to_second[1] < to_second[0]


def test_style_scale_resizes_the_style_image(hed_stylizer, content_path, style_path):
    with pytest.raises(StyleKerasError, match="style image is 8×5 px"):
        hed_stylizer.transfer(content_path, style_path, size=64, style_scale=0.125, steps=1)
    full = hed_stylizer.targets(load_image(content_path, 64), [load_image(style_path, 64)]).styles[0].grams
    half = hed_stylizer.targets(load_image(content_path, 64), [load_image(style_path, 32)]).styles[0].grams
    result = hed_stylizer.transfer(content_path, style_path, size=64, style_scale=0.5, steps=0)
    assert result.steps_done == 0
    assert not np.allclose(full["block1_conv1"], half["block1_conv1"])


def test_a_style_image_is_resized_to_the_output_but_never_enlarged_unless_style_scale_says():
    assert style_size((400, 300, 3), 256) == 256
    assert style_size((120, 90, 3), 256) == 120  # enlarging only blurs its strokes
    assert style_size((120, 90, 3), 256, style_scale=1.0) == 256
    assert style_size((400, 300, 3), 256, style_scale=0.5) == 128


def test_a_style_smaller_than_the_output_is_used_at_its_own_size(hed_stylizer, content_path, style_path):
    run = lambda **scale: hed_stylizer.transfer(content_path, style_path, size=128, steps=3, **scale).image
    default = run()
    np.testing.assert_array_equal(default, run(style_scale=0.5))  # the 64 px style as it is
    assert np.abs(default - run(style_scale=1.0)).mean() > 1e-3  # enlarged to 128 px: another target


def test_a_style_too_small_for_the_network_is_refused_with_what_to_do(hed_stylizer, content_path, tmp_path):
    tiny = tmp_path / "tiny.png"
    stylekeras.save_image(np.full((6, 9, 3), 0.5, np.float32), tiny)
    with pytest.raises(StyleKerasError, match=r"style image is 9×6 px .* not enlarged: use a larger one, or `style_"):
        hed_stylizer.transfer(content_path, tiny, size=64, steps=1)
    assert hed_stylizer.transfer(content_path, tiny, size=64, steps=0, style_scale=0.5).steps_done == 0


def test_style_scale_changes_the_result(hed_stylizer, content_path, style_path):
    run = lambda scale: hed_stylizer.transfer(content_path, style_path, size=64, steps=5, style_scale=scale).image
    assert np.abs(run(1.0) - run(0.5)).mean() > 1e-3


def test_per_layer_weights_and_balanced_normalization(content_path, style_path):
    stylizer = stylekeras.Stylizer(weights="random", backbone="vgg16", style_layers=["block1_conv1", "block2_conv1"],
                                   content_layers=["block2_conv1"], style_layer_weights=[3.0, 0.0])
    content, style = load_image(content_path, 16), load_image(style_path, 16)
    targets = stylizer.targets(content, [style], normalization="paper")
    parts = stylizer.loss_parts(content[None], targets)
    features = stylizer.model(content[None])
    expected = 3.0 * losses.layer_style_loss(features["block1_conv1"], targets.styles[0].grams["block1_conv1"])
    np.testing.assert_allclose(parts["style"], expected, rtol=1e-5)
    balanced = stylizer.targets(content, [style], normalization="balanced")
    gram = balanced.styles[0].grams["block1_conv1"]
    scale = float(tf.reduce_sum(tf.square(gram))) / (4 * 64**2)
    energy = float(tf.reduce_mean(tf.square(targets.content["block2_conv1"])))
    assert balanced.layer_weights["block1_conv1"] == pytest.approx(3.0 * energy / scale, rel=1e-4)


def test_balanced_weights_keep_the_balance_when_the_features_scale(content_path, style_path):
    # A network whose features are k times larger has a content loss k² times larger; the balanced style
    # loss must grow by k² too, so that one β gives the same image on VGG19 and hed.
    content, style = load_image(content_path, 16), load_image(style_path, 16)
    image = np.clip(content + 0.1 * np.random.default_rng(0).standard_normal(content.shape), 0, 1).astype(np.float32)
    ratios = []
    for k in (1.0, 10.0):
        stylizer = stylekeras.Stylizer(weights="random", backbone="vgg16", content_layers=["block2_conv1"],
                                       style_layers=["block1_conv1", "block2_conv1"])
        model = stylizer.model
        stylizer.model = lambda pixels, training=False, model=model, k=k: {
            name: k * value for name, value in model(pixels, training=training).items()}
        parts = stylizer.loss_parts(image[None], stylizer.targets(content, [style], normalization="balanced"))
        ratios.append(float(parts["style"][0] / parts["content"][0]))
    assert ratios[1] == pytest.approx(ratios[0], rel=1e-4)


def test_luminance_mode_keeps_the_content_chroma(hed_stylizer, content_path, style_path):
    result = hed_stylizer.transfer(content_path, style_path, size=48, steps=30, preserve_color="luminance")
    content = load_image(content_path, 48)
    chroma = lambda image: color.rgb_to_yiq(image)[..., 1:]
    assert np.abs(chroma(result.image) - chroma(content)).mean() < 0.01
    assert np.abs(color.rgb_to_yiq(result.image)[..., 0] - color.rgb_to_yiq(content)[..., 0]).mean() > 0.02


def test_histogram_matching_gives_the_content_colour_statistics():
    rng = np.random.default_rng(0)
    mixing = np.array([[1.0, 0.3, 0.0], [0.2, 1.0, 0.1], [0.0, 0.4, 1.0]])
    style = (0.5 + 0.05 * rng.normal(size=(32, 32, 3)) @ mixing).astype(np.float32)
    content = (np.array([0.6, 0.4, 0.3]) + 0.08 * rng.normal(size=(32, 32, 3)) @ mixing.T).astype(np.float32)
    matched = color.match_color_statistics(style, content).reshape(-1, 3)  # no pixel needs clipping here
    np.testing.assert_allclose(matched.mean(0), content.reshape(-1, 3).mean(0), atol=1e-4)
    np.testing.assert_allclose(np.cov(matched, rowvar=False), np.cov(content.reshape(-1, 3), rowvar=False), atol=1e-4)


def test_matching_several_images_matches_their_pooled_colours():
    rng = np.random.default_rng(1)
    source = (0.5 + 0.05 * rng.normal(size=(32, 32, 3))).astype(np.float32)
    red = (np.array([0.55, 0.4, 0.4]) + 0.03 * rng.normal(size=(32, 32, 3))).astype(np.float32)
    blue = (np.array([0.4, 0.4, 0.55]) + 0.05 * rng.normal(size=(32, 32, 3))).astype(np.float32)
    pooled = np.concatenate([red, red, red, blue]).reshape(-1, 3)  # red weighs 3 to blue's 1
    matched = color.match_color_statistics(source, [red, blue], [3.0, 1.0]).reshape(-1, 3)
    assert 0.0 < matched.min() and matched.max() < 1.0  # nothing clipped
    np.testing.assert_allclose(matched.mean(0), pooled.mean(0), atol=1e-4)
    np.testing.assert_allclose(np.cov(matched, rowvar=False), np.cov(pooled, rowvar=False), atol=2e-4)


def test_histogram_matching_does_not_blow_up_the_colour_noise_of_a_grey_image():
    rng = np.random.default_rng(0)
    grey = rng.uniform(0.4, 0.6, (32, 32, 1)) + rng.normal(0.0, 0.002, (32, 32, 3))  # colour from noise alone
    colourful = (0.5 + 0.1 * rng.normal(size=(32, 32, 3))).astype(np.float32)
    matched = color.match_color_statistics(grey.astype(np.float32), colourful).reshape(-1, 3)
    assert 0.0 < matched.min() and matched.max() < 1.0  # no clipping: matched is affine in grey
    design = np.concatenate([grey.reshape(-1, 3), np.ones((32 * 32, 1))], 1)
    transform = np.linalg.lstsq(design, matched, rcond=None)[0][:3]
    assert np.linalg.svd(transform, compute_uv=False).max() == pytest.approx(color.MAX_COLOR_GAIN, rel=1e-3)


def test_chroma_smoothing_keeps_the_luminance_and_averages_the_colour_noise_as_its_gaussian_does():
    rng = np.random.default_rng(0)
    grey = np.repeat(np.where(np.arange(64) < 32, 0.35, 0.65)[None, :, None], 64, 0)  # a sharp step
    noisy = (grey + 0.02 * rng.normal(size=(64, 64, 3))).astype(np.float32)  # nothing clipped
    smoothed = color.smooth_chroma(noisy).numpy()
    luminance = lambda image: color.rgb_to_yiq(image)[..., 0]
    np.testing.assert_allclose(luminance(smoothed), luminance(noisy), atol=1e-5)  # the step stays sharp
    # White noise through a 2-D Gaussian of σ px keeps 1 / (4πσ²) of its variance.
    chroma_variance = lambda image: color.rgb_to_yiq(image)[8:-8, 8:-8, 1:].var()
    assert chroma_variance(smoothed) / chroma_variance(noisy) == pytest.approx(
        1 / (4 * np.pi * color.CHROMA_SMOOTHING ** 2), rel=0.15)
    flat = np.full((16, 16, 3), [0.7, 0.4, 0.2], np.float32)
    np.testing.assert_allclose(color.smooth_chroma(flat), flat, atol=1e-6)


def _quantiles_along(pixels: np.ndarray, directions: np.ndarray) -> np.ndarray:
    return np.quantile(pixels.reshape(-1, 3) @ directions.T, np.linspace(0.05, 0.95, 10), axis=0)


def test_transport_gives_the_whole_colour_distribution_where_two_moments_do_not():
    rng = np.random.default_rng(0)
    source = (0.5 + 0.08 * rng.normal(size=(64, 64, 3))).astype(np.float32)
    # Two colour clusters: a distribution no affine map of the source's single cluster can give.
    clusters = np.where(rng.uniform(size=(64, 64, 1)) < 0.7, [0.75, 0.6, 0.3], [0.2, 0.3, 0.7])
    target = (clusters + 0.03 * rng.normal(size=(64, 64, 3))).astype(np.float32)
    directions = rng.normal(size=(6, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    wanted = _quantiles_along(target, directions)
    transported = color.transport_colors(source, [target])
    assert transported.shape == source.shape and transported.dtype == np.float32
    assert np.abs(_quantiles_along(transported, directions) - wanted).max() < 0.03
    assert np.abs(_quantiles_along(color.match_color_statistics(source, target), directions) - wanted).max() > 0.1
    np.testing.assert_array_equal(transported, color.transport_colors(source, [target]))  # seeded


def test_the_transport_start_in_a_graph_is_the_librarys_to_the_bit():
    # What a served stylizer's graph runs (`tf.function`, as a SavedModel's signatures) and the library's eager start.
    rng = np.random.default_rng(2)
    source = rng.uniform(size=(37, 29, 3)).astype(np.float32)
    target = (rng.uniform(size=(16, 16, 3)) ** 2).astype(np.float32)

    def start(source, target):
        smooth = color.smooth_chroma(source)
        maps = color.fit_transport(smooth, color.painting_sample([target], seed=3), seed=3)
        return color.transport_start(smooth, *color.color_statistics([target]), maps)

    traced = tf.function(start, autograph=False)
    np.testing.assert_array_equal(traced(tf.constant(source), tf.constant(target)), start(source, target))


def test_transport_maps_fitted_at_one_size_recolour_the_photo_at_another():
    rng = np.random.default_rng(5)
    photo = tf.image.resize(rng.uniform(0.3, 0.6, (8, 8, 3)), (64, 64)).numpy().astype(np.float32)
    painting = (rng.uniform(size=(48, 48, 3)) ** 3).astype(np.float32)
    directions = rng.normal(size=(12, 3))
    distance = lambda image: np.abs(_quantiles_along(image, directions) - _quantiles_along(painting, directions)).max()  # noqa: E731
    small = tf.image.resize(photo, (32, 32), antialias=True).numpy()
    maps = color.fit_transport(small, color.painting_sample([painting]))
    # Fitted to the photo at 32 px, they take its 64 px copy to the painting's distribution about as far as
    # the copy's own fit does (to a tenth of the way), to nearly the same colours.
    across = color.apply_transport(photo, maps).numpy()
    own = color.transport_to_sample(photo, color.painting_sample([painting])).numpy()
    assert distance(across) < distance(own) + 0.1 * distance(photo)
    assert np.abs(across - own).mean() < 0.02
    # Applied to the image they were fitted to, the maps are `transport_to_sample`.
    np.testing.assert_array_equal(color.apply_transport(small, maps),
                                  color.transport_to_sample(small, color.painting_sample([painting])))


def test_chroma_smoothing_pads_an_image_smaller_than_its_kernel_as_numpy_does():
    tiny = np.random.default_rng(4).uniform(size=(2, 3, 3)).astype(np.float32)
    yiq = color.rgb_to_yiq(tiny)
    radius = max(1, int(np.ceil(3 * color.CHROMA_SMOOTHING)))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / color.CHROMA_SMOOTHING) ** 2)
    chroma = yiq[..., 1:]
    for axis in (0, 1):
        padded = np.pad(chroma, [(radius, radius) if a == axis else (0, 0) for a in range(3)], mode="symmetric")
        chroma = sum(tap / taps.sum() * np.take(padded, np.arange(offset, offset + chroma.shape[axis]), axis=axis)
                     for offset, tap in enumerate(taps))
    expected = np.clip(color.yiq_to_rgb(np.concatenate([yiq[..., :1], chroma], -1)), 0, 1)
    np.testing.assert_allclose(color.smooth_chroma(tiny), expected, atol=1e-6)


def test_transport_pools_several_images_with_their_weights_and_keeps_the_photos_order():
    rng = np.random.default_rng(1)
    ramp = np.linspace(0.1, 0.9, 64 * 48).reshape(48, 64, 1)
    source = (ramp + 0.01 * rng.normal(size=(48, 64, 3))).astype(np.float32)
    red = (np.array([0.8, 0.2, 0.2]) + 0.03 * rng.normal(size=(32, 32, 3))).astype(np.float32)
    blue = (np.array([0.2, 0.2, 0.8]) + 0.03 * rng.normal(size=(32, 32, 3))).astype(np.float32)
    transported = color.transport_colors(source, [red, blue], [3.0, 1.0]).reshape(-1, 3)
    reds = transported[:, 0] > transported[:, 2]
    assert reds.mean() == pytest.approx(0.75, abs=0.03)
    # Each 1-D map is monotone, so the photo's order decides: one end of its ramp becomes red, the other blue.
    lightness = source.reshape(-1, 3).mean(1)
    brightest, darkest = lightness > np.quantile(lightness, 0.25), lightness < np.quantile(lightness, 0.75)
    assert max(np.mean(reds == brightest), np.mean(reds == darkest)) > 0.95  # three quarters each


def test_histogram_mode_keeps_the_content_colours_closer(hed_stylizer, content_path, style_path):
    content_mean = load_image(content_path, 48).reshape(-1, 3).mean(0)
    run = lambda mode: hed_stylizer.transfer(content_path, style_path, size=48, steps=30, preserve_color=mode).image
    shift = lambda image: np.abs(image.reshape(-1, 3).mean(0) - content_mean).sum()
    assert shift(run("histogram")) < shift(run(None))


def test_masks_keep_each_style_in_its_region(hed_stylizer, content_path, style_path, tmp_path):
    left = np.zeros((64, 64), np.uint8)
    left[:, :32] = 255
    Image.fromarray(left).save(tmp_path / "left.png")
    Image.fromarray(255 - left).save(tmp_path / "right.png")
    result = hed_stylizer.transfer(content_path, [style_path, STYLE2], style_masks=[tmp_path / "left.png",
                                   tmp_path / "right.png"], size=64, steps=60, optimizer="lbfgs")
    first, second = load_image(style_path, 64), load_image(STYLE2, 64)
    left_half, right_half = result.image[:, :32], result.image[:, 32:]
    assert _gram_distance(hed_stylizer, left_half, first) < _gram_distance(hed_stylizer, left_half, second)
    assert _gram_distance(hed_stylizer, right_half, second) < _gram_distance(hed_stylizer, right_half, first)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"style_blend": (1.0,)}, "1 weights for 2 style images"),
        ({"style_blend": (0.0, 0.0)}, "positive sum"),
        ({"optimizer": "sgd"}, "`optimizer` 'sgd'"),
        ({"preserve_color": "sepia"}, "`preserve_color` 'sepia'"),
        ({"average": 1.0}, "`average`"),
    ],
)
def test_bad_control_settings(random_stylizer, content_path, style_path, options, message):
    with pytest.raises(StyleKerasError, match=message):
        random_stylizer.transfer(content_path, [style_path, STYLE2], size=16, **options)


def test_bad_masks(random_stylizer, content_path, style_path, tmp_path):
    Image.new("L", (64, 32)).save(tmp_path / "wide.png")
    (tmp_path / "broken.png").write_text("no")
    with pytest.raises(StyleKerasError, match="masks need the content's aspect ratio"):
        random_stylizer.transfer(content_path, style_path, style_masks=[tmp_path / "wide.png"], size=16)
    with pytest.raises(StyleKerasError, match="style mask 1 .*not an image"):
        random_stylizer.transfer(content_path, style_path, style_masks=[tmp_path / "broken.png"], size=16)
    with pytest.raises(StyleKerasError, match="2 masks for 1 style images"):
        random_stylizer.transfer(content_path, style_path, style_masks=[tmp_path / "wide.png"] * 2, size=16)


@pytest.mark.parametrize("scales", [1, 2])
def test_lbfgs_never_raises_the_loss(hed_stylizer, content_path, style_path, scales):
    result = hed_stylizer.transfer(content_path, style_path, size=64, start_size=32, scales=scales, steps=25,
                                   optimizer="lbfgs", style_weight=1e6)
    total, size = result.history["total"], result.history["size"]
    same_scale = size[1:] == size[:-1]
    rises = total[1:][same_scale] / total[:-1][same_scale]
    assert rises.max() <= 1.0, rises.max()
    assert total[-1] < 0.5 * total[size == size[-1]][0]  # and it still optimizes
