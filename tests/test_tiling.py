"""stylekeras.tiling: tiles partition the image, and the tiled loss, gradient and targets are the whole image's."""

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
        parts = stylizer.loss_parts(image, targets)
        total = losses.total_loss(parts["content"], parts["style"], parts["tv"], *LOSS_WEIGHTS)
    return float(total[0]), tape.gradient(total, image).numpy()


@pytest.mark.parametrize("offset", [(0, 0), (16, 32)])
def test_tiled_gradient_is_the_whole_image_gradient(hed_stylizer, content_path, style_path, offset):
    content, style = load_image(content_path, 64), load_image(style_path, 64)
    targets = hed_stylizer.targets(content, [style], normalization="paper")  # LOSS_WEIGHTS are the paper's scale
    image = tf.Variable(np.random.default_rng(0).uniform(0.2, 0.8, (1, 64, 64, 3)).astype(np.float32))
    total, gradient = _whole_image_loss_and_gradient(hed_stylizer, image, targets)

    # Margins as large as the image: every window is the whole image, so the result is exact.
    exact = TiledObjective(hed_stylizer.model, Tiling(32, 64, 16), image, targets, LOSS_WEIGHTS)
    parts, tiled_gradient = exact.loss_and_gradient(exact.tiling.grid(64, 64, offset))
    assert float(parts["total"][0]) == pytest.approx(total, rel=1e-5)
    loss_alone = exact.loss(exact.tiling.grid(64, 64, offset))  # its first pass: the same parts
    assert {name: float(value[0]) for name, value in loss_alone.items()} == {
        name: float(value[0]) for name, value in parts.items()}
    np.testing.assert_allclose(tiled_gradient, gradient, atol=1e-5 * np.abs(gradient).max())

    # Small margins: each core sees only 16 px of context, and the gradient is still nearly the same.
    narrow = TiledObjective(hed_stylizer.model, Tiling(32, 16, 16), image, targets, LOSS_WEIGHTS)
    parts, tiled_gradient = narrow.loss_and_gradient(narrow.tiling.grid(64, 64, offset))
    assert float(parts["total"][0]) == pytest.approx(total, rel=1e-3)
    assert np.corrcoef(tiled_gradient.numpy().ravel(), gradient.ravel())[0, 1] > 0.999


def test_tiled_gradient_with_style_masks_is_the_whole_image_gradient(hed_stylizer, content_path, style_path):
    content, style = load_image(content_path, 64), load_image(style_path, 64)
    left = np.zeros((64, 64), np.float32)
    left[:, :40] = 1.0
    targets = hed_stylizer.targets(content, [style, style[::-1]], masks=[left, 1.0 - left], normalization="paper")
    image = tf.Variable(np.random.default_rng(2).uniform(0.2, 0.8, (1, 64, 64, 3)).astype(np.float32))
    total, gradient = _whole_image_loss_and_gradient(hed_stylizer, image, targets)
    tiled = TiledObjective(hed_stylizer.model, Tiling(32, 64, 16), image, targets, LOSS_WEIGHTS)
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
    grams, ring_grams = tiled_normalized_grams(hed_stylizer.model, style, hed_stylizer.style_layers, tiling)
    for tiled, untiled in ((grams, expected.grams), (ring_grams, expected.ring_grams)):
        for name, gram in tiled.items():
            np.testing.assert_allclose(gram, untiled[name], rtol=1e-4, atol=1e-5 * float(tf.reduce_max(untiled[name])))


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
    assert (tiling.tile, tiling.margin, tiling.stride) == (104, 24, 8)  # block4_conv1 is three poolings deep
    assert hed_stylizer.tiling(stylekeras.TransferSettings()) is None
    with pytest.raises(StyleKerasError, match="`tile` must be"):
        stylekeras.TransferSettings(tile=0)


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
