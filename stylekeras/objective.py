"""What the optimizer minimizes at one scale: the losses' targets, and α·L_content + β·L_style + γ·L_tv
(+ λ·L_temporal for a video frame).

`Targets` is computed once per scale (`Stylizer.targets`); an `Objective` built from it is the one place
where the losses and their total are assembled, for the whole image in one `tf.function` or, when the
image is larger than the tiling window, tile by tile (`stylekeras.tiling`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from stylekeras import losses
from stylekeras.features import layer_stride
from stylekeras.tiling import TiledObjective, Tiling

# The size the loss weights are given for (`size_scaled_loss_weights`).
REFERENCE_SHAPE = (512, 512)


@dataclass(frozen=True)
class StyleTarget:
    """One style's normalized Gram matrices per layer, the mask of the region it applies to (per layer,
    or None for everywhere) and its weight."""

    grams: dict[str, tf.Tensor]
    masks: dict[str, tf.Tensor] | None
    weight: float


@dataclass(frozen=True)
class TemporalTarget:
    """A video frame's temporal target: the previous stylized frame warped onto it (`[batch, H, W, 3]`),
    where the warp is reliable (`[batch, H, W, 1]`, 0 to 1) and the temporal loss's weight per frame
    (`temporal_loss_weights`)."""

    warped: tf.Tensor
    consistency: tf.Tensor
    weight: np.ndarray


@dataclass(frozen=True)
class Targets:
    """What the losses compare against at one scale: the content image's feature maps by layer, the style
    targets, each style layer's weight w_l (one value per photo when photos are stylized together) and,
    for a video frame, the temporal target."""

    content: Mapping[str, tf.Tensor]
    styles: Sequence[StyleTarget]
    layer_weights: Mapping[str, float | np.ndarray]
    temporal: TemporalTarget | None = None


def loss_parts(model: Callable[[tf.Tensor], Mapping[str, tf.Tensor]], images: tf.Tensor, targets: Targets
               ) -> dict[str, tf.Tensor]:
    """The unweighted content, style and total-variation losses of `images` under the feature `model` (or a
    function calling it), and each style layer's weighted share of the style loss as "style/<layer>": each
    `[batch]`."""
    features = model(images)
    content = tf.add_n([losses.content_loss(features[name], target) for name, target in targets.content.items()])
    by_layer: dict[str, tf.Tensor] = {}
    for target in targets.styles:
        terms = losses.weighted_layer_style_losses(features, target.grams, targets.layer_weights, target.masks)
        for name, term in terms.items():
            by_layer[name] = by_layer.get(name, 0.0) + target.weight * term
    return {
        "content": content,
        "style": tf.add_n(list(by_layer.values())),
        "tv": losses.total_variation_loss(images),
        **{f"style/{name}": value for name, value in by_layer.items()},
    }


@dataclass(frozen=True)
class StyleGrams:
    """A style image's normalized Gram matrices per layer (G / M, eq. 3), the same over its feature maps'
    outermost ring only, and its ring shares (`ring_shares`): what a `StyleTarget` is made from for a
    result of any shape (`for_ring_shares`)."""

    grams: dict[str, tf.Tensor]
    ring_grams: dict[str, tf.Tensor]
    ring_shares: dict[str, tf.Tensor]

    def for_ring_shares(self, shares: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """The Gram matrices with each layer's ring weighted to the result's `shares` (`ring_shares`):
        `losses.gram_for_ring_share`."""
        return {name: losses.gram_for_ring_share(gram, self.ring_grams[name], self.ring_shares[name], shares[name])
                for name, gram in self.grams.items()}


def style_grams(model: Callable[[tf.Tensor], Mapping[str, tf.Tensor]], images: tf.Tensor, layers: Sequence[str]
                ) -> StyleGrams:
    """The `StyleGrams` of `images` at each style layer, from one pass through the network `model` (the
    feature model, or a function calling it)."""
    features = model(images)
    return StyleGrams(
        {name: losses.normalized_gram(features[name]) for name in layers},
        {name: losses.ring_gram(features[name]) for name in layers},
        ring_shares(layers, tf.shape(images)[1], tf.shape(images)[2]))


def ring_shares(layers: Sequence[str], height: int | tf.Tensor, width: int | tf.Tensor) -> dict[str, tf.Tensor]:
    """Each layer's `losses.ring_share` for an image of `height`×`width` px: the share of its Gram matrix's
    average that falls on the feature map's outermost ring."""
    return {name: losses.ring_share(height // layer_stride(name), width // layer_stride(name)) for name in layers}


def region_ring_shares(masks: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """`ring_shares` of the region that per-layer `masks` (`[1, h, w, 1]`) weight: the share of each masked
    average (`losses.normalized_gram`) that falls on the map's outermost ring."""
    return {name: tf.reduce_sum(mask * losses.ring_mask(*mask.shape[1:3])) / (tf.reduce_sum(mask) + 1e-8)
            for name, mask in masks.items()}


def size_scaled_loss_weights(weights: tuple, pixels: float | tf.Tensor) -> tuple:
    """(α, β, γ) as given for 512×512 px, for an image of `pixels` positions: α and γ scaled by 512² / pixels.
    The content and variation losses are sums over positions (eq. 1) while the style loss is normalized by
    M² (eq. 4), so with fixed weights the style would fade as the image grows; scaled, the same settings
    give the same balance, and look, at every size."""
    content_weight, style_weight, tv_weight = weights
    scale = REFERENCE_SHAPE[0] * REFERENCE_SHAPE[1] / pixels
    return content_weight * scale, style_weight, tv_weight * scale


def total_loss_parts(model: Callable[[tf.Tensor], Mapping[str, tf.Tensor]], images: tf.Tensor | tf.Variable,
                     targets: Targets, loss_weights: tuple) -> dict[str, tf.Tensor]:
    """`loss_parts` plus "total" = α·L_content + β·L_style + γ·L_tv: the one place the total is assembled
    (`loss_and_gradient`, the library's `Objective` and the served stylizer's loop all come here)."""
    parts = loss_parts(model, images, targets)
    parts["total"] = losses.total_loss(parts["content"], parts["style"], parts["tv"], *loss_weights)
    return parts


def loss_and_gradient(model: keras.Model, images: tf.Tensor | tf.Variable, targets: Targets,
                      loss_weights: tuple) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
    """`total_loss_parts` and d total / d images."""
    return _parts_and_gradient(lambda values: total_loss_parts(model, values, targets, loss_weights), images)


def _parts_and_gradient(parts_of: Callable[[tf.Tensor | tf.Variable], dict[str, tf.Tensor]],
                       images: tf.Tensor | tf.Variable) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
    """The loss parts `parts_of(images)` (with "total") and d total / d images."""
    with tf.GradientTape() as tape:
        tape.watch(images)
        parts = parts_of(images)
    # The gradient of the photos' summed losses: each photo's own, since no loss mixes photos.
    return parts, tape.gradient(parts["total"], images)


def balanced_layer_weights(content: Mapping[str, tf.Tensor], grams: Mapping[str, tf.Tensor],
                           layer_weights: Mapping[str, float]) -> dict[str, tf.Tensor]:
    """The "balanced" style normalization: each w_l divided by the style's own E_l against zero,
    Σ A² / (4 N²), and multiplied by the content features' mean square.

    The content loss grows with the square of the features, which differ widely between networks and
    between photos (QUALITY.md); the relative style loss does not. In units of the content features' mean
    square, the same β gives the same balance on every network and photo.
    """
    energy = tf.reduce_mean(content_energy(content))
    return {name: weight * energy / (tf.reduce_sum(tf.square(grams[name])) / (4.0 * float(grams[name].shape[-1]) ** 2)
                                     + 1e-12)
            for name, weight in layer_weights.items()}


def content_energy(content: Mapping[str, tf.Tensor]) -> tf.Tensor:
    """The content features' mean square, per photo (`[batch]`): the unit of the balanced style weights
    and of the temporal loss's weight."""
    return tf.reduce_mean(tf.stack([tf.reduce_mean(tf.square(tf.cast(target, tf.float32)), axis=[1, 2, 3])
                                    for target in content.values()]), axis=0)


def temporal_loss_weights(weights: Sequence[float], content: Mapping[str, tf.Tensor]) -> np.ndarray:
    """Each frame's λ (`weights`) in the content loss's units: λ · e · 512², with e the content features'
    mean square (`content_energy`) and 512² the positions the content loss is scaled to. L_temporal is a
    mean of squared pixel differences in [0, 1]; scaled so, one λ holds on every network, photo and size."""
    return (np.asarray(weights, np.float32) * content_energy(content).numpy()
            * REFERENCE_SHAPE[0] * REFERENCE_SHAPE[1]).astype(np.float32)


def stack_targets(per_photo: Sequence[Targets]) -> Targets:
    """A batch's targets from each photo's: feature maps and Gram matrices joined along the batch axis, the
    layer weights as one value per photo (they differ with "balanced" normalization and recoloured
    styles). The masks depend only on the size, which the photos share."""
    first = per_photo[0]
    return Targets(
        content={name: tf.concat([photo.content[name] for photo in per_photo], 0) for name in first.content},
        styles=[
            StyleTarget({name: tf.concat([photo.styles[index].grams[name] for photo in per_photo], 0)
                         for name in target.grams}, target.masks, target.weight)
            for index, target in enumerate(first.styles)
        ],
        layer_weights={name: np.array([photo.layer_weights[name] for photo in per_photo], np.float32)
                       for name in first.layer_weights},
    )


def temporal_loss_and_gradient(images: tf.Tensor | tf.Variable, target: TemporalTarget
                               ) -> tuple[tf.Tensor, tf.Tensor]:
    """L_temporal of `images` (`[batch]`, unweighted like `loss_parts`) and d λ·L_temporal / d images. Per
    pixel, without the network: added to the whole image's or the tiles' loss alike."""
    with tf.GradientTape() as tape:
        tape.watch(images)
        loss = losses.temporal_loss(images, target.warped, target.consistency)
        weighted = target.weight * loss
    return loss, tape.gradient(weighted, images)


class WholeImageLoss:
    """`loss_and_gradient` of one feature `model` as a `tf.function` of the image, the targets and the loss
    weights, traced for images of any height and width: the scales of a run, a video's next frame and a
    folder's next photo reuse one trace instead of paying for another. One per model:
    `Stylizer.whole_image_loss`."""

    def __init__(self, model: keras.Model) -> None:
        def loss(images, content, styles, layer_weights, loss_weights):
            return total_loss_parts(model, images, _bound_targets(content, styles, layer_weights), loss_weights)

        def evaluate(images, *arguments):
            # The traced loss called, not traced again: the gradient's trace reuses the network's
            # (BENCHMARKS.md, "Design choices").
            return _parts_and_gradient(lambda values: self._traced_loss(values, *arguments), images)

        # The losses' Python only loops over layers, so autograph would convert them for nothing: a
        # cost paid on every run's first step (BENCHMARKS.md, "Design choices").
        self._traced_loss = tf.function(loss, autograph=False)
        self._traced = tf.function(evaluate, autograph=False)

    def bind(self, images: tf.Variable, targets: Targets, loss_weights: tuple[float, float, float]
             ) -> tuple[Callable[[], tuple[dict[str, tf.Tensor], tf.Tensor]], Callable[[], dict[str, tf.Tensor]]]:
        """Two functions of nothing at `images`' current value: the loss parts and gradient, and the loss parts
        alone (a forward pass, about half the time, traced with the first).
        The weights become tensors, so runs that differ only in them (each photo's balanced layer weights)
        share a trace."""
        weight = lambda value: tf.convert_to_tensor(value, tf.float32)  # noqa: E731
        arguments = (
            dict(targets.content),
            [(dict(style.grams), None if style.masks is None else dict(style.masks), weight(style.weight))
             for style in targets.styles],
            {name: weight(value) for name, value in targets.layer_weights.items()},
            tuple(weight(value) for value in loss_weights),
        )
        # Traced for feature maps and masks of any height and width: tf.function keeps it by this
        # signature, and a later scale or size runs as fast on it as on a trace of its own shape.
        specs = tf.nest.map_structure(any_size_spec, (images, *arguments))
        evaluate = self._traced.get_concrete_function(*specs)
        return (lambda: evaluate(tf.convert_to_tensor(images), *arguments),
                lambda: self._traced_loss.get_concrete_function(*specs)(tf.convert_to_tensor(images), *arguments))

    @property
    def traces(self) -> int:
        """How often the loss was traced: once per batch size, network and kind of targets."""
        return self._traced.experimental_get_tracing_count()


def _bound_targets(content, styles, layer_weights) -> Targets:
    """`Targets` from `WholeImageLoss.bind`'s arguments."""
    return Targets(content, [StyleTarget(*style) for style in styles], layer_weights)


def any_size_spec(value: tf.Tensor | tf.Variable | None) -> tf.TensorSpec | None:
    """A `[batch, height, width, channels]` value's spec with height and width left open; other values' as
    they are (None, for no masks, stays None)."""
    if value is None:
        return None
    shape = tf.TensorShape(value.shape)
    if shape.rank == 4:
        shape = tf.TensorShape([shape[0], None, None, shape[3]])
    return tf.TensorSpec(shape, value.dtype)


class Objective:
    """α·L_content + β·L_style + γ·L_tv (+ λ·L_temporal) of an image variable, and its gradient.

    Calling it returns the loss parts (`loss_parts` plus "total", and "temporal" for a video frame, one
    value per photo) and d total / d image at the variable's current value. The whole image is one
    `tf.function` (`whole_image_loss`'s, or a new one); an image larger than the `tiling` window is
    evaluated tile by tile (`tiled`), on a grid offset by `step` (so seams never stay in one place) and
    calling `within_step` with the fraction done after each window.
    """

    def __init__(self, model: keras.Model, targets: Targets, loss_weights: tuple[float, float, float],
                 image: tf.Variable, tiling: Tiling | None = None, seed: int = 0,
                 whole_image_loss: WholeImageLoss | None = None) -> None:
        self.loss_weights = loss_weights
        height, width = (int(length) for length in tf.shape(image)[1:3])  # its declared shape may leave them open
        self.tiled = tiling is not None and tiling.needed(height, width)
        if self.tiled:
            tiled = TiledObjective(model, tiling, image, targets, loss_weights)
            grid = lambda step: tiling.grid(height, width, tiling.random_offset(seed, step))  # noqa: E731
            self._evaluate = lambda step, within_step: tiled.loss_and_gradient(grid(step), within_step)
            self._loss = lambda step, within_step: tiled.loss(grid(step), within_step)
        else:
            evaluate, loss = (whole_image_loss or WholeImageLoss(model)).bind(image, targets, loss_weights)
            self._evaluate = lambda step, within_step: evaluate()
            self._loss = lambda step, within_step: loss()
        self._temporal_target = targets.temporal
        self._temporal = None if targets.temporal is None else tf.function(
            lambda: temporal_loss_and_gradient(image, targets.temporal), autograph=False)

    def __call__(self, step: int = 0, within_step: Callable[[float], None] | None = None
                 ) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
        parts, gradient = self._evaluate(step, within_step)
        if self._temporal is None:
            return parts, gradient
        temporal, temporal_gradient = self._temporal()
        return self._with_temporal(parts, temporal), gradient + temporal_gradient

    def loss(self, step: int = 0, within_step: Callable[[float], None] | None = None) -> dict[str, tf.Tensor]:
        """The loss parts of a call, without the gradient: forward passes only (about half a call's time on the
        whole image; a tiled call's first pass over the windows)."""
        parts = self._loss(step, within_step)
        return parts if self._temporal is None else self._with_temporal(parts, self._temporal()[0])

    def _with_temporal(self, parts: dict[str, tf.Tensor], temporal: tf.Tensor) -> dict[str, tf.Tensor]:
        return {**parts, "temporal": temporal, "total": parts["total"] + self._temporal_target.weight * temporal}
