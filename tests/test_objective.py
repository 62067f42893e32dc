"""stylekeras.objective: the temporal term a video frame adds, on the whole image and tile by tile."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from stylekeras import losses
from stylekeras.image_io import load_image
from stylekeras.objective import Objective, TemporalTarget, content_energy, temporal_loss_weights
from stylekeras.tiling import Tiling

LOSS_WEIGHTS = (1.0, 1e4, 100.0)


@pytest.fixture(scope="module")
def frame(hed_stylizer, content_path, style_path):
    content, style = load_image(content_path, 64), load_image(style_path, 64)
    targets = hed_stylizer.targets(content, [style], normalization="paper")
    rng = np.random.default_rng(0)
    warped = rng.uniform(0.2, 0.8, (1, 64, 64, 3)).astype(np.float32)
    consistency = (rng.uniform(size=(1, 64, 64, 1)) > 0.3).astype(np.float32)
    weights = temporal_loss_weights([0.5], targets.content)
    temporal = dataclasses.replace(targets, temporal=TemporalTarget(tf.constant(warped), tf.constant(consistency), weights))
    return targets, temporal, warped, consistency, weights


def test_temporal_weight_is_lambda_in_the_content_losss_units(frame):
    targets, *_ , weights = frame
    energy = np.mean([np.mean(np.square(target)) for target in targets.content.values()])
    np.testing.assert_allclose(content_energy(targets.content), [energy], rtol=1e-5)
    np.testing.assert_allclose(weights, [0.5 * energy * 512 * 512], rtol=1e-5)


@pytest.mark.parametrize("tiling", [None, Tiling(16, 16, 16)])
def test_a_frame_adds_lambda_times_the_temporal_loss_and_its_gradient(hed_stylizer, frame, tiling):
    """Whole image or tiles, the temporal term adds λ·L_temporal to the total and 2λc(x − ω)/D to the
    gradient (Ruder et al. eq. 5), and nothing else changes."""
    targets, temporal, warped, consistency, weights = frame
    image = tf.Variable(np.random.default_rng(1).uniform(0.2, 0.8, (1, 64, 64, 3)).astype(np.float32))
    plain_parts, plain_gradient = Objective(hed_stylizer.model, targets, LOSS_WEIGHTS, image, tiling)()
    objective = Objective(hed_stylizer.model, temporal, LOSS_WEIGHTS, image, tiling)
    assert objective.tiled == (tiling is not None)
    parts, gradient = objective()
    difference = image.numpy() - warped
    expected_loss = np.mean(consistency * difference**2)
    assert float(parts["temporal"][0]) == pytest.approx(expected_loss, rel=1e-5)
    assert float(parts["total"][0]) == pytest.approx(float(plain_parts["total"][0]) + weights[0] * expected_loss, rel=1e-5)
    expected_gradient = plain_gradient.numpy() + weights[0] * 2 * consistency * difference / difference.size
    np.testing.assert_allclose(gradient, expected_gradient, atol=1e-5 * np.abs(expected_gradient).max())


def test_temporal_loss_gradient_matches_finite_difference(frame):
    _, temporal, *_ = frame
    image = tf.Variable(np.random.default_rng(2).uniform(0.2, 0.8, (1, 64, 64, 3)).astype(np.float32))
    with tf.GradientTape() as tape:
        loss = losses.temporal_loss(image, temporal.temporal.warped, temporal.temporal.consistency)[0]
    gradient = tape.gradient(loss, image).numpy()
    direction = np.random.default_rng(3).normal(size=gradient.shape).astype(np.float32)
    direction /= np.linalg.norm(direction)
    epsilon = 1e-2
    plus, minus = (float(losses.temporal_loss(image + sign * epsilon * direction, temporal.temporal.warped,
                                              temporal.temporal.consistency)[0]) for sign in (1, -1))
    assert float(np.sum(gradient * direction)) == pytest.approx((plus - minus) / (2 * epsilon), rel=1e-3)
