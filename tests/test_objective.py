"""stylekeras.objective: the temporal term a video frame adds, on the whole image and tile by tile; the
neural-style preset's weights make the objective neural-style's loss; a traced loss serves later images,
targets and weights of the same shapes."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

import stylekeras
from stylekeras import losses
from stylekeras.image_io import load_image
from stylekeras.objective import (
    Objective, TemporalTarget, WholeImageLoss, content_energy, loss_and_gradient, temporal_loss_weights,
)
from stylekeras.stylize import TransferSettings
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


def test_neural_style_preset_weights_give_neural_styles_loss(content_path, style_path):
    """With the preset's α, β and the paper's normalization, our α·L_content + β·L_style is neural_style.lua's
    5·mean((F − P)²) + Σ_l 100·mean((FFᵀ/(C·H·W) − A_l)²) — for a style image of the result's shape,
    whose Gram matrices average every position evenly (`losses.gram_for_ring_share`); its γ is
    neural-style's TV weight on pixels ×256 at 512×512 px. Random weights: the identity holds for any
    network."""
    preset = stylekeras.preset("neural-style")
    style_layers, content_layers = preset.pop("style_layers"), preset.pop("content_layers")
    stylizer = stylekeras.Stylizer(weights="random", style_layers=style_layers, content_layers=content_layers,
                                   style_layer_weights=preset.pop("style_layer_weights"), seed=2)
    settings = TransferSettings(**preset)
    content = load_image(content_path, 48)
    style = tf.image.resize(load_image(style_path, 48), content.shape[:2]).numpy()
    image = tf.constant(np.random.default_rng(4).uniform(0.0, 1.0, (1, *content.shape)).astype(np.float32))
    targets = stylizer.targets(content, [style], normalization=settings.style_normalization)
    content_weight, style_weight, _ = settings.loss_weights(*content.shape[:2])
    parts, _ = loss_and_gradient(stylizer.model, image, targets, (content_weight, style_weight, 0.0))

    def gram(features):
        flat = tf.reshape(features, [-1, features.shape[-1]])
        return tf.matmul(flat, flat, transpose_a=True) / tf.cast(tf.size(features), tf.float32)

    ours, photo, painting = (stylizer.model(batch, training=False) for batch in (image, content[None], style[None]))
    content_loss = 5.0 * tf.reduce_mean(tf.square(ours[content_layers[0]] - photo[content_layers[0]]))
    style_loss = tf.add_n([100.0 * tf.reduce_mean(tf.square(gram(ours[name]) - gram(painting[name])))
                           for name in style_layers])
    assert content_weight * float(parts["content"][0]) == pytest.approx(float(content_loss), rel=1e-4)
    assert style_weight * float(parts["style"][0]) == pytest.approx(float(style_loss), rel=1e-4)
    assert float(parts["total"][0]) == pytest.approx(float(content_loss + style_loss), rel=1e-4)
    assert settings.loss_weights(512, 512)[2] == pytest.approx(1e-3 * 0.5 * 256**2)


def test_a_traced_loss_serves_new_images_targets_and_weights_of_any_size(hed_stylizer, content_path, style_path):
    """A second image variable of another size, with other targets (another photo's balanced layer weights)
    and other loss weights, reuses the trace, and gets its own `loss_and_gradient`, not the first call's;
    the loss alone is the same parts."""
    traced = WholeImageLoss(hed_stylizer.model)
    content, style = load_image(content_path, 64), load_image(style_path, 64)
    smaller = load_image(content_path, 48)
    rng = np.random.default_rng(3)
    for photo, painting, loss_weights in ((content, style, LOSS_WEIGHTS),
                                          (smaller[::-1] ** 2, style[:, ::-1], (2.0, 3e4, 10.0))):
        targets = hed_stylizer.targets(photo, [painting])
        image = tf.Variable(rng.uniform(0.2, 0.8, (1, *photo.shape)).astype(np.float32))
        evaluate, loss = traced.bind(image, targets, loss_weights)
        parts, gradient = evaluate()
        loss_alone = loss()
        expected_parts, expected_gradient = loss_and_gradient(hed_stylizer.model, image, targets, loss_weights)
        assert loss_alone.keys() == expected_parts.keys()
        for name, expected in expected_parts.items():
            np.testing.assert_allclose(parts[name], expected, rtol=1e-5, err_msg=name)
            np.testing.assert_allclose(loss_alone[name], expected, rtol=1e-5, err_msg=name)
        np.testing.assert_allclose(gradient, expected_gradient, atol=1e-5 * np.abs(expected_gradient).max())
    assert traced.traces == 1
