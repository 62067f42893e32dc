"""Tiled loss and gradient: outputs larger than memory allows, computed one window at a time.

The image is cut into cores that partition it; the network sees each core with `margin` pixels of
context on every side (its window), so a core's features are nearly those of the whole image. The style
loss depends on Gram matrices over the *whole* image, so a step makes two passes over the windows:

1. forward only: each core's Gram sums, added up into the global Gram matrices, and the content loss;
2. with a tape per window: the gradient of the surrogate Σ_l ⟨∂L/∂S_l, S_l,core⟩ + α·L_content,core,
   where S_l is the global Gram sum and ∂L/∂S_l is computed once from pass 1. Its gradient is exactly
   the whole image's gradient through that core's features (the chain rule through the sum), so the
   tiles agree on one set of statistics and leave no seams in the style.

Peak memory follows the window size, not the image size. The grid moves by a random offset (a multiple
of the deepest layer's stride) every step, so the remaining edge effects of the windows never stay in
one place.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import keras
import numpy as np
import tensorflow as tf

from stylekeras import losses
from stylekeras.features import layer_stride

if TYPE_CHECKING:
    from stylekeras.objective import Targets

Box = tuple[int, int, int, int]  # top, bottom, left, right in image pixels (bottom and right excluded)


@dataclass(frozen=True)
class Tile:
    """A core of the image and the window the network sees it in (the core plus margins, clipped)."""

    window: Box
    core: Box


@dataclass(frozen=True)
class Tiling:
    """Cores of `tile`×`tile` px, windows `margin` px larger on each side; both multiples of `stride`
    (the deepest layer's downsampling), so every core maps onto whole feature-map cells."""

    tile: int
    margin: int
    stride: int

    def __post_init__(self) -> None:
        if self.tile % self.stride or self.margin % self.stride:
            raise ValueError(f"tile {self.tile} and margin {self.margin} must be multiples of {self.stride}")

    @property
    def window(self) -> int:
        """The largest window side: what bounds memory."""
        return self.tile + 2 * self.margin

    def needed(self, height: int, width: int) -> bool:
        """Whether an image of this size is larger than one window (otherwise it runs whole)."""
        return max(height, width) > self.window

    def grid(self, height: int, width: int, offset: tuple[int, int] = (0, 0)) -> list[Tile]:
        """The tiles covering the image, the core grid shifted by `offset` pixels (down, right)."""
        rows, columns = self._spans(height, offset[0]), self._spans(width, offset[1])
        return [Tile((*row_window, *column_window), (*row_core, *column_core))
                for row_core, row_window in rows for column_core, column_window in columns]

    def random_offset(self, seed: int, step: int) -> tuple[int, int]:
        """The grid offset of one step: random, but a function of (seed, step) so resumed runs repeat it."""
        cells = np.random.default_rng([seed, step]).integers(0, self.tile // self.stride, size=2)
        return int(cells[0]) * self.stride, int(cells[1]) * self.stride

    def _spans(self, length: int, offset: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
        edges = sorted({0, length, *range(offset % self.tile, length, self.tile)})
        return [((start, end), (max(0, start - self.margin), min(length, end + self.margin)))
                for start, end in zip(edges, edges[1:])]


def core_features(model: keras.Model, pixels: tf.Tensor, window: tf.Tensor, core: tf.Tensor) -> dict:
    """Each layer's feature map of the window's `pixels`, cut to the core, with the core's box in the
    whole image's feature cells of that layer."""
    cores = {}
    for name, feature_map in model(pixels, training=False).items():
        stride = layer_stride(name)
        local = (core - tf.repeat(window[::2], 2)) // stride  # the window starts on a whole cell
        cores[name] = (feature_map[:, local[0]:local[1], local[2]:local[3], :], core // stride)
    return cores


def tiled_feature_maps(model: keras.Model, image: np.ndarray, layers: Sequence[str],
                       tiling: Tiling) -> dict[str, tf.Tensor]:
    """The `[1, h, w, c]` feature maps of a whole H×W×3 image, assembled core by core."""
    height, width = image.shape[:2]
    maps = {}
    for cores in _image_cores(model, image, tiling):
        for name in layers:
            features, box = cores[name]
            if name not in maps:
                stride = layer_stride(name)
                maps[name] = np.zeros((1, height // stride, width // stride, features.shape[-1]), np.float32)
            maps[name][:, box[0]:box[1], box[2]:box[3]] = features.numpy()
    return {name: tf.constant(value) for name, value in maps.items()}


def tiled_normalized_grams(model: keras.Model, image: np.ndarray, layers: Sequence[str], tiling: Tiling
                           ) -> tuple[dict[str, tf.Tensor], dict[str, tf.Tensor]]:
    """`losses.normalized_gram` of each layer of a whole H×W×3 image, and the same over the map's outermost
    ring only (`losses.ring_mask`): the Gram matrices of `objective.StyleGrams`, summed core by core."""
    rings = {name: losses.ring_mask(image.shape[0] // layer_stride(name), image.shape[1] // layer_stride(name))
             for name in layers}
    sums = {name: 0.0 for name in layers}
    ring_sums = {name: 0.0 for name in layers}
    for cores in _image_cores(model, image, tiling):
        for name in layers:
            features, box = cores[name]
            sums[name] += losses.gram_matrix(features)
            ring_sums[name] += losses.gram_matrix(features, rings[name][:, box[0]:box[1], box[2]:box[3], :])
    return ({name: sums[name] / _positions(name, *image.shape[:2]) for name in layers},
            {name: ring_sums[name] / tf.reduce_sum(rings[name]) for name in layers})


def _image_cores(model: keras.Model, image: np.ndarray, tiling: Tiling):
    """`core_features` of each tile of a whole H×W×3 image (grid without offset), one window at a time."""
    for tile in tiling.grid(*image.shape[:2]):
        top, bottom, left, right = tile.window
        yield core_features(model, image[None, top:bottom, left:right], *_boxes(tile))


class TiledObjective:
    """α·L_content + β·L_style + γ·L_tv of an H×W image variable and its gradient, tile by tile.

    `targets` is an `objective.Targets`: the whole image's content feature maps, the style targets (masks,
    if any, at the whole image's feature resolution) and the style layers' weights.
    """

    def __init__(self, model: keras.Model, tiling: Tiling, image: tf.Variable, targets: Targets,
                 loss_weights: tuple[float, float, float]) -> None:
        self.model = model
        self.tiling = tiling
        self.image = image
        self.height, self.width = (int(length) for length in tf.shape(image)[1:3])  # its declared shape may leave them open
        self.content_targets = dict(targets.content)
        self.style_targets = list(targets.styles)
        self.layer_weights = dict(targets.layer_weights)
        self.loss_weights = loss_weights
        self.style_layers = list(self.style_targets[0].grams)
        self.gradient = tf.Variable(tf.zeros_like(image), trainable=False)
        # reduce_retracing: windows at the image's edges are smaller; one shape-generic trace serves all.
        self._core_sums = tf.function(self._core_sums_of, reduce_retracing=True)
        self._add_core_gradient = tf.function(self._add_core_gradient_of, reduce_retracing=True)
        self._style_terms = tf.function(self._style_terms_of)
        self._variation = tf.function(self._variation_of)

    def loss_and_gradient(self, tiles: Sequence[Tile], progress: Callable[[float], None] | None = None
                          ) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
        """The loss parts (as `objective.loss_parts`, plus "total") at the image, and d total / d image.

        `progress`, if given, is called after each window with the fraction of the work done.
        """
        # A forward pass is about a quarter of the work.
        parts, sum_gradients = self._loss_and_sum_gradients(
            tiles, None if progress is None else lambda done: progress(done / 4))
        for index, tile in enumerate(tiles):  # pass 2: each window's share of the gradient
            self._add_core_gradient(sum_gradients, *_boxes(tile))
            if progress:
                progress(0.25 + 0.75 * (index + 1) / len(tiles))
        return parts, tf.convert_to_tensor(self.gradient)

    def loss(self, tiles: Sequence[Tile], progress: Callable[[float], None] | None = None) -> dict[str, tf.Tensor]:
        """The loss parts of `loss_and_gradient` alone: its first pass over the windows, forward only."""
        return self._loss_and_sum_gradients(tiles, progress)[0]

    def _loss_and_sum_gradients(self, tiles: Sequence[Tile], progress: Callable[[float], None] | None
                                ) -> tuple[dict[str, tf.Tensor], list[dict[str, tf.Tensor]]]:
        """Pass 1: the loss parts from the global Gram sums, and ∂(β·L_style)/∂sums; `progress` gets the
        fraction of the windows done. Starts the gradient buffer with the variation loss's gradient."""
        content, sums = tf.constant(0.0), None
        for index, tile in enumerate(tiles):
            tile_sums, tile_content = self._core_sums(*_boxes(tile))
            sums = tile_sums if sums is None else tf.nest.map_structure(tf.add, sums, tile_sums)
            content += tile_content
            if progress:
                progress((index + 1) / len(tiles))
        style_parts, sum_gradients = self._style_terms(sums)
        variation = self._variation()
        style = tf.add_n(list(style_parts.values()))
        parts = {"content": content, "style": style, "tv": variation,
                 **{f"style/{name}": value for name, value in style_parts.items()}}
        parts["total"] = losses.total_loss(content, style, variation, *self.loss_weights)
        return parts, sum_gradients

    def _cores(self, window, core, pixels=None):
        if pixels is None:
            pixels = self.image[:, window[0]:window[1], window[2]:window[3], :]
        return core_features(self.model, pixels, window, core)

    def _core_sums_of(self, window, core):
        cores = self._cores(window, core)
        return self._gram_sums(cores), self._content_loss(cores)

    def _gram_sums(self, cores) -> list[dict[str, tf.Tensor]]:
        """Per style target and layer: Σ over the core of (m·F)ᵀF, m the target's mask (or 1)."""
        sums = []
        for target in self.style_targets:
            by_layer = {}
            for name in self.style_layers:
                features, box = cores[name]
                mask = None if target.masks is None else target.masks[name][:, box[0]:box[1], box[2]:box[3], :]
                by_layer[name] = losses.gram_matrix(features, mask)
            sums.append(by_layer)
        return sums

    def _content_loss(self, cores) -> tf.Tensor:
        total = tf.constant(0.0)
        for name, target in self.content_targets.items():
            features, box = cores[name]
            total += losses.content_loss(features, target[:, box[0]:box[1], box[2]:box[3], :])
        return total

    def _style_terms_of(self, sums):
        """Each layer's weighted style loss from the global Gram sums, and ∂(β·L_style)/∂sums."""
        with tf.GradientTape() as tape:
            tape.watch(sums)
            terms = {name: tf.constant(0.0) for name in self.style_layers}
            for target, by_layer in zip(self.style_targets, sums):
                for name in self.style_layers:
                    area = (tf.reduce_sum(target.masks[name]) + 1e-8 if target.masks is not None
                            else _positions(name, self.height, self.width))
                    term = losses.gram_style_loss(by_layer[name] / area, target.grams[name])
                    terms[name] += target.weight * self.layer_weights[name] * term
            style = self.loss_weights[1] * tf.add_n(list(terms.values()))
        return terms, tape.gradient(style, sums)

    def _add_core_gradient_of(self, sum_gradients, window, core):
        pixels = self.image[:, window[0]:window[1], window[2]:window[3], :]
        with tf.GradientTape() as tape:
            tape.watch(pixels)
            cores = self._cores(window, core, pixels)
            surrogate = self.loss_weights[0] * self._content_loss(cores)
            for by_layer, by_layer_gradient in zip(self._gram_sums(cores), sum_gradients):
                for name in self.style_layers:
                    surrogate += tf.reduce_sum(by_layer[name] * by_layer_gradient[name])
        region = self.gradient[:, window[0]:window[1], window[2]:window[3], :]
        region.assign(region + tape.gradient(surrogate, pixels))

    def _variation_of(self):
        """L_tv of the whole image (cheap: no network); its weighted gradient starts the gradient buffer."""
        with tf.GradientTape() as tape:
            tape.watch(self.image)
            variation = losses.total_variation_loss(self.image)
        self.gradient.assign(self.loss_weights[2] * tape.gradient(variation, self.image))
        return variation


def _positions(name: str, height: int, width: int) -> float:
    stride = layer_stride(name)
    return float((height // stride) * (width // stride))


def _boxes(tile: Tile) -> tuple[tf.Tensor, tf.Tensor]:
    return tf.constant(tile.window, tf.int32), tf.constant(tile.core, tf.int32)
