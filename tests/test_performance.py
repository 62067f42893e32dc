"""The fast path: mixed precision and tiling give the same optimization as the plain float32 whole-image step."""

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

import stylekeras
from stylekeras import losses
from stylekeras.errors import StyleKerasError
from stylekeras.image_io import load_image
from stylekeras.tiling import Tiling, TiledObjective, tiled_feature_maps, tiled_normalized_grams

LOSS_WEIGHTS = (1.0, 1e4, 100.0)


def test_gram_matrix_is_the_sum_of_outer_products():
    features = tf.random.stateless_normal([2, 5, 3, 4], seed=[1, 2])
    mask = tf.random.stateless_uniform([2, 5, 3, 1], seed=[3, 4])
    expected = tf.einsum("bhwi,bhwj->bij", features * mask, features)
    np.testing.assert_allclose(losses.gram_matrix(features, mask), expected, rtol=1e-5)
    np.testing.assert_allclose(losses.gram_matrix(features), tf.einsum("bhwi,bhwj->bij", features, features), rtol=1e-5)


@settings(max_examples=200, deadline=None)
@given(height=st.integers(1, 300), width=st.integers(1, 300), cells=st.integers(1, 6), margin_cells=st.integers(0, 4),
       offset=st.tuples(st.integers(0, 200), st.integers(0, 200)))
def test_tile_cores_partition_the_image_and_windows_stay_bounded(height, width, cells, margin_cells, offset):
    tiling = Tiling(16 * cells, 16 * margin_cells, 16)
    offset = (offset[0] // 16 * 16 % tiling.tile, offset[1] // 16 * 16 % tiling.tile)
    covered = np.zeros((height, width), int)
    for tile in tiling.grid(height, width, offset):
        top, bottom, left, right = tile.core
        window_top, window_bottom, window_left, window_right = tile.window
        covered[top:bottom, left:right] += 1
        assert window_top <= top < bottom <= window_bottom and window_left <= left < right <= window_right
        assert window_bottom - window_top <= tiling.window and window_right - window_left <= tiling.window
        assert window_top % 16 == 0 and window_left % 16 == 0  # windows start on whole feature cells
    assert (covered == 1).all()


def _whole_image_loss_and_gradient(stylizer, image, targets):
    with tf.GradientTape() as tape:
        parts = stylizer.loss_parts(image, *targets)
        total = losses.total_loss(parts["content"], parts["style"], parts["tv"], *LOSS_WEIGHTS)
    return float(total[0]), tape.gradient(total, image).numpy()


@pytest.mark.parametrize("offset", [(0, 0), (16, 32)])
def test_tiled_gradient_is_the_whole_image_gradient(hed_stylizer, content_path, style_path, offset):
    content, style = load_image(content_path, 64), load_image(style_path, 64)
    targets = hed_stylizer.targets(content, [style])
    image = tf.Variable(np.random.default_rng(0).uniform(0.2, 0.8, (1, 64, 64, 3)).astype(np.float32))
    total, gradient = _whole_image_loss_and_gradient(hed_stylizer, image, targets)

    # Margins as large as the image: every window is the whole image, so the result is exact.
    exact = TiledObjective(hed_stylizer.model, Tiling(32, 64, 16), image, *targets, LOSS_WEIGHTS)
    parts, tiled_gradient = exact.loss_and_gradient(exact.tiling.grid(64, 64, offset))
    assert float(parts["total"][0]) == pytest.approx(total, rel=1e-5)
    np.testing.assert_allclose(tiled_gradient, gradient, atol=1e-5 * np.abs(gradient).max())

    # Small margins: each core sees only 16 px of context, and the gradient is still nearly the same.
    narrow = TiledObjective(hed_stylizer.model, Tiling(32, 16, 16), image, *targets, LOSS_WEIGHTS)
    parts, tiled_gradient = narrow.loss_and_gradient(narrow.tiling.grid(64, 64, offset))
    assert float(parts["total"][0]) == pytest.approx(total, rel=1e-3)
    assert np.corrcoef(tiled_gradient.numpy().ravel(), gradient.ravel())[0, 1] > 0.999


def test_tiled_gradient_with_style_masks_is_the_whole_image_gradient(hed_stylizer, content_path, style_path):
    content, style = load_image(content_path, 64), load_image(style_path, 64)
    left = np.zeros((64, 64), np.float32)
    left[:, :40] = 1.0
    targets = hed_stylizer.targets(content, [style, style[::-1]], masks=[left, 1.0 - left])
    image = tf.Variable(np.random.default_rng(2).uniform(0.2, 0.8, (1, 64, 64, 3)).astype(np.float32))
    total, gradient = _whole_image_loss_and_gradient(hed_stylizer, image, targets)
    tiled = TiledObjective(hed_stylizer.model, Tiling(32, 64, 16), image, *targets, LOSS_WEIGHTS)
    parts, tiled_gradient = tiled.loss_and_gradient(tiled.tiling.grid(64, 64, (16, 16)))
    assert float(parts["total"][0]) == pytest.approx(total, rel=1e-5)
    np.testing.assert_allclose(tiled_gradient, gradient, atol=1e-5 * np.abs(gradient).max())


def test_tiled_targets_are_the_whole_image_targets(hed_stylizer, content_path, style_path):
    content, style = load_image(content_path, 64), load_image(style_path, 64)
    tiling = Tiling(32, 64, 16)
    whole = hed_stylizer.model(content[None])
    for name, feature_map in tiled_feature_maps(hed_stylizer.model, content, hed_stylizer.content_layers, tiling).items():
        np.testing.assert_allclose(feature_map, whole[name], atol=1e-4 * float(tf.reduce_max(whole[name])))
    expected = hed_stylizer.style_grams(style)
    for name, gram in tiled_normalized_grams(hed_stylizer.model, style, hed_stylizer.style_layers, tiling).items():
        np.testing.assert_allclose(gram, expected[name], rtol=1e-4, atol=1e-5 * float(tf.reduce_max(expected[name])))


def test_tiled_transfer_follows_the_whole_image_run(hed_stylizer, content_path, style_path):
    run = dict(size=128, steps=8, style_scale=0.5, optimizer="adam")  # L-BFGS would amplify rounding differences
    whole = hed_stylizer.transfer(content_path, style_path, **run)
    tiled = hed_stylizer.transfer(content_path, style_path, tile=32, tile_margin=32, **run)
    assert hed_stylizer.tiling(stylekeras.TransferSettings(tile=32, tile_margin=32)).needed(128, 128)
    assert tiled.history["total"][-1] < 0.6 * tiled.history["total"][0]
    np.testing.assert_allclose(tiled.history["total"], whole.history["total"], rtol=0.05)
    assert np.abs(tiled.image - whole.image).mean() < 0.01


def test_tile_sizes_round_up_to_the_deepest_stride(hed_stylizer):
    tiling = hed_stylizer.tiling(stylekeras.TransferSettings(tile=100, tile_margin=20))
    assert (tiling.tile, tiling.margin, tiling.stride) == (112, 32, 16)
    assert hed_stylizer.tiling(stylekeras.TransferSettings()) is None
    with pytest.raises(StyleKerasError, match="--tile must be"):
        stylekeras.TransferSettings(tile=0)


def test_mixed_precision_features_and_their_losses_are_close(content_path, style_path):
    image, style = load_image(content_path, 64)[None], load_image(style_path, 64)[None]
    exact_stylizer, mixed_stylizer = stylekeras.Stylizer(weights="hed"), stylekeras.Stylizer(weights="hed", precision="mixed")
    exact, mixed = exact_stylizer.model(image), mixed_stylizer.model(image)
    for name, features in mixed.items():
        assert features.dtype == tf.bfloat16  # the losses take them from here in float32
        error = float(tf.norm(tf.cast(features, tf.float32) - exact[name]) / tf.norm(exact[name]))
        assert 0 < error < 0.05, name  # bfloat16 has 8 bits of mantissa: close, but not identical
        gram, exact_gram = losses.normalized_gram(features), losses.normalized_gram(exact[name])
        assert gram.dtype == tf.float32
        assert float(tf.norm(gram - exact_gram) / tf.norm(exact_gram)) < 0.05, name
    # The Gram matrix of bfloat16 features is their exact float32 product (L-BFGS needs an exact loss);
    # only its gradient is bfloat16, like the convolutions it feeds.
    values = tf.cast(tf.random.normal([1, 16, 16, 8]), tf.bfloat16)
    np.testing.assert_allclose(losses.gram_matrix(values), losses.gram_matrix(tf.cast(values, tf.float32)), rtol=1e-6)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(values)
        exact_values = tf.cast(values, tf.float32)
        grams = [losses.gram_matrix(values) ** 2, losses.gram_matrix(exact_values) ** 2]
    gradients = [tape.gradient(gram, values) for gram in grams]
    assert gradients[0].dtype == tf.bfloat16
    bfloat16_gradient, exact_gradient = (tf.cast(gradient, tf.float32) for gradient in gradients)
    assert float(tf.norm(bfloat16_gradient - exact_gradient) / tf.norm(exact_gradient)) < 0.01
    targets = [stylizer.targets(image[0], [style[0]]) for stylizer in (exact_stylizer, mixed_stylizer)]
    parts = [stylizer.loss_parts(image, *target) for stylizer, target in zip((exact_stylizer, mixed_stylizer), targets)]
    for name in ("content", "style", "tv"):
        assert parts[1][name].dtype == tf.float32
        np.testing.assert_allclose(parts[1][name], parts[0][name], rtol=0.05, atol=1e-3, err_msg=name)


def test_mixed_precision_stylizes(content_path, style_path):
    stylizer = stylekeras.Stylizer(weights="hed", precision="mixed")
    result = stylizer.transfer(content_path, style_path, size=64, steps=30)
    assert result.image.dtype == np.float32 and np.isfinite(result.image).all()
    assert result.history["style"][-1] < 0.2 * result.history["style"][0]


def test_unknown_precision_is_refused():
    with pytest.raises(StyleKerasError, match="--precision 'half' is not one of float32, mixed"):
        stylekeras.Stylizer(weights="random", backbone="vgg16", precision="half")


def test_a_tiled_step_reports_progress_and_stops_between_windows(random_stylizer, content_path, style_path):
    run = dict(size=32, steps=3, tile=8, tile_margin=4, init="noise", optimizer="adam")
    reports, fractions = [], []

    def stop_during_step_two(fraction):
        fractions.append((len(reports), fraction))
        if reports and fraction > 0.3:
            raise KeyboardInterrupt

    stopped = random_stylizer.transfer(content_path, style_path, callback=reports.append,
                                       within_step=stop_during_step_two, **run)
    first_step = [fraction for step, fraction in fractions if step == 0]
    assert first_step == sorted(first_step) and first_step[-1] == pytest.approx(1.0) and len(first_step) > 4
    assert stopped.steps_done == 1 and stopped.stop_reason.startswith("interrupted")
    one_step = random_stylizer.transfer(content_path, style_path, **{**run, "steps": 1})
    np.testing.assert_array_equal(stopped.image, one_step.image)  # the half-done step was not applied


def test_bfloat16_hardware_and_speed_flags_are_read_from_cpu_flags(tmp_path):
    from stylekeras.features import bfloat16_is_fast, speed_flags

    with_amx, without = tmp_path / "amx", tmp_path / "old"
    with_amx.write_text("processor : 0\nflags : fpu sse2 avx2 avx512f amx_bf16 amx_tile\n")
    without.write_text("processor : 0\nflags : fpu sse2 avx2\n")
    assert bfloat16_is_fast(with_amx) is True
    assert bfloat16_is_fast(without) is False
    assert bfloat16_is_fast(tmp_path / "missing") is None
    assert speed_flags(with_amx) == "avx2, avx512f, amx_bf16" and speed_flags(without) == "avx2"
    assert speed_flags(tmp_path / "missing") == "unknown"


def test_cli_warns_when_mixed_precision_has_no_hardware(monkeypatch, tmp_path, content_path, style_path):
    from typer.testing import CliRunner

    from cli import app
    from stylekeras import features

    monkeypatch.setattr(features, "bfloat16_is_fast", lambda: False)
    arguments = ["transfer", str(content_path), str(style_path), "-o", str(tmp_path / "out.png"), "--size", "32",
                 "--steps", "1", "--weights", "random", "--precision", "mixed"]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0 and "--precision mixed is likely slower than float32 here" in result.stderr
    result = CliRunner().invoke(app, arguments[:-1] + ["float32"])
    assert result.exit_code == 0 and "bfloat16" not in result.stderr
