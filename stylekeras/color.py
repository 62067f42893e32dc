"""Colour control from Gatys, Bethge, Hertzmann & Shechtman 2017, "Preserving Color in Neural Artistic
Style Transfer" (arXiv:1606.05897) / "Controlling Perceptual Factors in Neural Style Transfer" (CVPR 2017).

Images are float32 H×W×3 RGB arrays in [0, 1]. The starts' recolouring (the mean-and-covariance match,
the sliced transport, the chroma smoothing) is written in TensorFlow, so a served stylizer's graph and the
library run the same ops.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import tensorflow as tf

# NTSC RGB → YIQ (luminance Y, chroma I and Q), as used by Gatys et al. 2017 for luminance-only transfer.
_RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], np.float32)
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ).astype(np.float32)
# The largest factor `match_color_statistics` stretches any colour direction by.
MAX_COLOR_GAIN = 8.0
# `transport_colors`: the random rotations it matches the three 1-D distributions along (after 10, the
# result's quantiles along other directions are the painting's to 0.01), the pixels of each side it
# measures the distributions on, the quantiles each 1-D map interpolates between, and the evenly spaced
# points it tabulates each map at (so a pixel costs a lookup, not a search of the quantiles).
TRANSPORT_ROTATIONS = 10
TRANSPORT_SAMPLES = 16384
TRANSPORT_QUANTILES = 1024
TRANSPORT_TABLE = 8192
# `smooth_chroma`'s Gaussian σ in px: takes a noisy photo's colour grain in the result down to the
# painting's level; a clean photo's start changes only at colour edges, its result not measurably
# (QUALITY.md, "The photo's chroma smoothed before the transport").
CHROMA_SMOOTHING = 1.0


def rgb_to_yiq(image: np.ndarray) -> np.ndarray:
    return image @ _RGB_TO_YIQ.T


def yiq_to_rgb(image: np.ndarray) -> np.ndarray:
    return image @ _YIQ_TO_RGB.T


def luminance_image(image: np.ndarray, like: np.ndarray | None = None) -> np.ndarray:
    """The image's luminance as a gray RGB image; with `like`, its mean and deviation matched to `like`'s.

    Matching the style's luminance statistics to the content's is eq. 3 of Gatys et al. 2017: without it,
    a dark painting would darken the photo even though only texture should transfer.
    """
    luma = rgb_to_yiq(image)[..., 0]
    if like is not None:
        target = rgb_to_yiq(like)[..., 0]
        luma = (luma - luma.mean()) / (luma.std() + 1e-6) * target.std() + target.mean()
    return np.repeat(np.clip(luma, 0.0, 1.0)[..., None], 3, axis=-1).astype(np.float32)


def with_chroma_of(stylized: np.ndarray, content: np.ndarray) -> np.ndarray:
    """Stylized luminance combined with the content's I and Q channels (the "luminance" method)."""
    yiq = rgb_to_yiq(content)
    yiq[..., 0] = rgb_to_yiq(stylized)[..., 0]
    return np.clip(yiq_to_rgb(yiq), 0.0, 1.0).astype(np.float32)


def smooth_chroma(image: np.ndarray | tf.Tensor, sigma: float = CHROMA_SMOOTHING) -> tf.Tensor:
    """`image` (H×W×3 in [0, 1]) with its chroma (YIQ's I and Q) blurred by a Gaussian of `sigma` (> 0) px and
    its luminance kept as it is (a float32 tensor, clipped to [0, 1]). Applied before a colour map: a map that
    stretches the photo's colours (a nearly grey photo's, most) stretches their noise alike, into a grain
    the losses do not remove, while the eye and the network see detail in the luminance, not the chroma."""
    yiq = tf.tensordot(tf.cast(image, tf.float32), tf.constant(_RGB_TO_YIQ.T), 1)
    radius = max(1, math.ceil(3 * sigma))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps = (taps / taps.sum()).astype(np.float32)
    chroma = yiq[..., 1:]
    for axis in (0, 1):
        length = tf.shape(chroma)[axis]
        # The edges mirrored (numpy's "symmetric" padding), for an image of any size: the mirror repeats.
        period = tf.math.floormod(tf.range(-radius, length + radius), 2 * length)
        padded = tf.gather(chroma, tf.where(period < length, period, 2 * length - 1 - period), axis=axis)
        blurred = float(taps[0]) * tf.gather(padded, tf.range(length), axis=axis)
        for offset, tap in enumerate(taps[1:], start=1):
            blurred += float(tap) * tf.gather(padded, tf.range(offset, offset + length), axis=axis)
        chroma = blurred
    rgb = tf.tensordot(tf.concat([yiq[..., :1], chroma], -1), tf.constant(_YIQ_TO_RGB.T), 1)
    return tf.clip_by_value(rgb, 0.0, 1.0)


def match_color_statistics(source: np.ndarray, target: np.ndarray | Sequence[np.ndarray],
                           weights: Sequence[float] | None = None) -> np.ndarray:
    """Linearly transform `source`'s colours so their mean and covariance equal `target`'s — or, for
    several target images, those of their mixture with `weights` (default equal; e.g. blended styles).

    The "colour histogram matching" method of Gatys et al. 2017: the style image to the photo's colours
    (`preserve_color="histogram"`) or the photo to the style's (`init="palette"`); see `match_to_statistics`.
    """
    mean, covariance = color_statistics([target] if isinstance(target, np.ndarray) else list(target), weights)
    return match_to_statistics(source, mean, covariance).numpy()


def transport_colors(source: np.ndarray | tf.Tensor, target: Sequence[np.ndarray | tf.Tensor],
                     weights: Sequence[float] | None = None, seed: int = 0) -> np.ndarray:
    """`source` (H×W×3) recoloured so its colours are distributed as those of the `target` images pooled
    with `weights` (default equal): their whole distribution, where `match_color_statistics` matches two
    moments. Sliced optimal transport (Pitié, Kokaram & Dahyot 2005; Rabin, Peyré, Delon & Bernot 2011): in
    each of `TRANSPORT_ROTATIONS` random orthonormal bases, every coordinate of the source's colours is
    mapped onto the target's by their quantiles. Each map is monotone, so within a step the photo's colours
    keep their order along the coordinate it maps (not along every direction overall). Measured on
    `TRANSPORT_SAMPLES` pixels of each side (`painting_sample`), applied to all of them; the samples and
    bases are drawn from `seed` by TensorFlow's stateless random ops. Float32 in [0, 1].
    """
    return transport_to_sample(source, painting_sample(target, weights, seed), seed).numpy()


def painting_sample(target: Sequence[np.ndarray | tf.Tensor], weights: Sequence[float] | None = None,
                    seed: int = 0) -> tf.Tensor:
    """The pixels `transport_colors` measures the `target` images' colours on: `TRANSPORT_SAMPLES` of them
    pooled with `weights` (default equal), float32 `[samples, 3]`, drawn from `seed`."""
    weights = [1.0 / len(target)] * len(target) if weights is None else [w / sum(weights) for w in weights]
    return tf.concat([tf.cast(_sample_pixels(image, max(1, round(weight * TRANSPORT_SAMPLES)), (seed, index)),
                              tf.float32) for index, (image, weight) in enumerate(zip(target, weights), start=1)], 0)


class TransportMaps(NamedTuple):
    """A sliced transport's maps (`fit_transport`), which `apply_transport` maps any image's colours by: each
    rotation's orthonormal basis `[rotations, 3, 3]` and its three 1-D maps as `_tabulated_map` tabulates them
    (the lowest point and the spacing `[rotations, 3, 1]`, the values and their rises `[rotations, 3,
    TRANSPORT_TABLE]`), float64. A tuple of tensors, so a graph's loop can carry them."""

    bases: tf.Tensor
    lows: tf.Tensor
    spacings: tf.Tensor
    values: tf.Tensor
    rises: tf.Tensor


# `TransportMaps`' shapes, field by field: what a graph's loop that carries the maps declares.
TRANSPORT_MAP_SHAPES = ([TRANSPORT_ROTATIONS, 3, 3], [TRANSPORT_ROTATIONS, 3, 1], [TRANSPORT_ROTATIONS, 3, 1],
                        [TRANSPORT_ROTATIONS, 3, TRANSPORT_TABLE], [TRANSPORT_ROTATIONS, 3, TRANSPORT_TABLE])


def fit_transport(source: np.ndarray | tf.Tensor, sample: tf.Tensor, seed: int = 0) -> TransportMaps:
    """The maps of `transport_colors` from `source` (H×W×3) to a painting's `painting_sample`: measured on
    `TRANSPORT_SAMPLES` of `source`'s pixels, drawn from `seed` as the bases are."""
    pooled = tf.transpose(tf.cast(sample, tf.float64))
    points = tf.transpose(_sample_pixels(source, tf.minimum(TRANSPORT_SAMPLES, tf.size(source) // 3), (seed, 0)))
    levels = tf.constant((np.arange(TRANSPORT_QUANTILES) + 0.5) / TRANSPORT_QUANTILES)
    bases = [tf.linalg.qr(tf.random.stateless_normal([3, 3], [seed, 1000 + rotation], dtype=tf.float64))[0]
             for rotation in range(TRANSPORT_ROTATIONS)]
    # The painting's sample never moves, only the photo's: its quantiles in every basis in one sort.
    goals = tf.split(_quantiles(tf.concat([tf.transpose(basis) @ pooled for basis in bases], 0), levels),
                     TRANSPORT_ROTATIONS)
    maps = []
    for basis, goal in zip(bases, goals):
        points = tf.transpose(basis) @ points
        # x → F_goal⁻¹(F_own(x)) along each coordinate, piecewise linear between the sides' quantiles.
        maps.append(_tabulated_map(_quantiles(points, levels), goal))
        points = basis @ _look_up(points, *maps[-1])
    return TransportMaps(tf.stack(bases), *(tf.stack(parts) for parts in zip(*maps)))


def apply_transport(source: np.ndarray | tf.Tensor, maps: TransportMaps) -> tf.Tensor:
    """`source` (H×W×3) with its colours mapped by a `fit_transport`'s `maps`, clipped to [0, 1] (float32
    tensor): the image they were fitted to, or the same photo at another size."""
    points = tf.transpose(tf.reshape(tf.cast(source, tf.float64), [-1, 3]))
    for rotation in range(TRANSPORT_ROTATIONS):
        basis = maps.bases[rotation]
        mapped = _look_up(tf.transpose(basis) @ points, *(part[rotation] for part in maps[1:]))
        points = basis @ mapped
    return tf.cast(tf.clip_by_value(tf.reshape(tf.transpose(points), tf.shape(source)), 0.0, 1.0), tf.float32)


def transport_to_sample(source: np.ndarray | tf.Tensor, sample: tf.Tensor, seed: int = 0) -> tf.Tensor:
    """`transport_colors` onto a painting's `painting_sample`, in TensorFlow ops (float32 tensor)."""
    return apply_transport(source, fit_transport(source, sample, seed))


def transport_start(smooth: np.ndarray | tf.Tensor, mean: tf.Tensor, covariance: tf.Tensor,
                    maps: TransportMaps) -> tf.Tensor:
    """The `init="transport"` start from the photo with its chroma smoothed (`smooth_chroma`: both maps
    stretch a photo's colour noise, a nearly grey photo's most, into grain the losses keep), recoloured
    halfway between the painting's colour `mean` and `covariance` (`match_to_statistics`) and its whole
    distribution (`apply_transport` by `maps`, fitted to the smoothed photo and the painting's
    `painting_sample`, at this size or another): the whole distribution alone also spreads a painting's
    rarer colours over smooth regions, which cost both Matisse pairs more of their style measure than
    halfway does (QUALITY.md). Float32; TensorFlow ops, so a served graph starts where the library does."""
    return 0.5 * (match_to_statistics(smooth, mean, covariance) + apply_transport(smooth, maps))


def _quantiles(values: tf.Tensor, levels: tf.Tensor) -> tf.Tensor:
    """The `levels` (in [0, 1]) quantiles of each row of `values` `[rows, n]`, linear between order
    statistics (numpy's default method): `[rows, levels]`."""
    ordered = tf.sort(values, axis=-1)
    last = tf.shape(ordered)[-1] - 1
    position = levels * tf.cast(last, tf.float64)
    below = tf.cast(tf.floor(position), tf.int32)
    low, high = tf.gather(ordered, below, axis=-1), tf.gather(ordered, tf.minimum(below + 1, last), axis=-1)
    return low + (high - low) * (position - tf.floor(position))


def _tabulated_map(known: tf.Tensor, wanted: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """Each row's piecewise-linear map through (`known`, `wanted`) (`[3, points]`, `known` ascending; constant
    beyond its ends, as `np.interp`) at `TRANSPORT_TABLE` + 1 evenly spaced points from its lowest to its
    highest known value: (lowest `[3, 1]`, spacing `[3, 1]`, values `[3, TRANSPORT_TABLE]` at all points but
    the last, each value's rise to the next `[3, TRANSPORT_TABLE]`) for `_look_up`, so a pixel costs a
    lookup, not a search."""
    low = known[:, :1]
    step = (known[:, -1:] - low) / TRANSPORT_TABLE
    grid = low + step * tf.range(TRANSPORT_TABLE + 1, dtype=tf.float64)
    segment = tf.clip_by_value(tf.searchsorted(known, grid, side="right") - 1, 0, tf.shape(known)[-1] - 2)
    left, right = tf.gather(known, segment, batch_dims=1), tf.gather(known, segment + 1, batch_dims=1)
    share = tf.clip_by_value(tf.math.divide_no_nan(grid - left, right - left), 0.0, 1.0)
    first, second = tf.gather(wanted, segment, batch_dims=1), tf.gather(wanted, segment + 1, batch_dims=1)
    table = first + (second - first) * share
    # Each point's rise to the next taken once here, not once a pixel in `_look_up` (the same subtraction).
    return low, step, table[:, :-1], table[:, 1:] - table[:, :-1]


def _look_up(values: tf.Tensor, low: tf.Tensor, step: tf.Tensor, table: tf.Tensor, rises: tf.Tensor) -> tf.Tensor:
    """Each row of `values` `[3, n]` through its `_tabulated_map`, linear between the table's points."""
    position = tf.clip_by_value(tf.math.divide_no_nan(values - low, step), 0.0, TRANSPORT_TABLE)
    index = tf.minimum(tf.cast(position, tf.int32), TRANSPORT_TABLE - 1)  # position ≥ 0: the cast floors it
    return (tf.gather(table, index, batch_dims=1)
            + tf.gather(rises, index, batch_dims=1) * (position - tf.cast(index, tf.float64)))


def _sample_pixels(image: np.ndarray | tf.Tensor, count: int | tf.Tensor, seed: tuple[int, int]) -> tf.Tensor:
    """`count` pixels of an H×W×3 image drawn at random from the stateless `seed` (with replacement only when
    it has fewer, so pooled images keep their weights whatever their sizes), float64 `[count, 3]`."""
    pixels = tf.reshape(tf.cast(image, tf.float64), [-1, 3])
    total = tf.shape(pixels)[0]
    # The `count` smallest of the draws, in no order (the samples are only ever sorted): a partial sort.
    chosen = tf.cond(total >= count,
                     lambda: tf.math.top_k(-tf.random.stateless_uniform([total], seed), count, sorted=False).indices,
                     lambda: tf.random.stateless_uniform([count], seed, maxval=total, dtype=tf.int32))
    return tf.gather(pixels, chosen)


def color_statistics(images: Sequence[np.ndarray | tf.Tensor], weights: Sequence[float] | None = None
                     ) -> tuple[tf.Tensor, tf.Tensor]:
    """Mean [3] and covariance [3, 3] (float64) of the colours of H×W×3 `images` pooled with `weights`
    (default equal): what `match_to_statistics` matches, and what a served stylizer's `style_targets` returns."""
    moments = [_moments(image) for image in images]
    if len(moments) == 1:
        return moments[0]
    weights = [1.0 / len(moments)] * len(moments) if weights is None else [w / sum(weights) for w in weights]
    mean = tf.add_n([weight * m for weight, (m, _) in zip(weights, moments)])
    second_moment = tf.add_n([weight * (c + _outer(m)) for weight, (m, c) in zip(weights, moments)])
    return mean, second_moment - _outer(mean)


def match_to_statistics(source: np.ndarray | tf.Tensor, mean: tf.Tensor, covariance: tf.Tensor) -> tf.Tensor:
    """`source` (H×W×3) with its colours mapped to `mean` and `covariance`, clipped to [0, 1] (float32).

    x' = A (x − μ_s) + μ_t with A = Σ_t^½ Σ_s^−½ (symmetric square roots). No colour direction is stretched
    more than `MAX_COLOR_GAIN`. TensorFlow ops, so a served graph runs exactly what the library runs.
    """
    pixels = tf.reshape(tf.cast(source, tf.float64), [-1, 3])
    mean_s, cov_s = _moments(source)
    ridge = 1e-5 * tf.eye(3, dtype=tf.float64)
    transform = _sqrtm(tf.cast(covariance, tf.float64) + ridge) @ tf.linalg.inv(_sqrtm(cov_s + ridge))
    # An almost grey source has colour only from noise and JPEG blocks; unbounded, the match would blow
    # them up into coloured blotches. The quality benchmark's photo × painting pairs stay under the cap.
    gains, left, right = tf.linalg.svd(transform)
    capped = (left * tf.minimum(gains, MAX_COLOR_GAIN)) @ tf.transpose(right)
    transform = tf.where(gains[0] > MAX_COLOR_GAIN, capped, transform)
    matched = (pixels - mean_s) @ tf.transpose(transform) + tf.cast(mean, tf.float64)
    return tf.cast(tf.reshape(tf.clip_by_value(matched, 0.0, 1.0), tf.shape(source)), tf.float32)


def _moments(image: np.ndarray | tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Mean and covariance (unbiased, as numpy's `cov`) of an image's pixel colours."""
    pixels = tf.reshape(tf.cast(image, tf.float64), [-1, 3])
    mean = tf.reduce_mean(pixels, axis=0)
    centered = pixels - mean
    count = tf.cast(tf.shape(pixels)[0], tf.float64)
    return mean, tf.matmul(centered, centered, transpose_a=True) / (count - 1.0)


def _outer(vector: tf.Tensor) -> tf.Tensor:
    return vector[:, None] * vector[None, :]


def _sqrtm(matrix: tf.Tensor) -> tf.Tensor:
    values, vectors = tf.linalg.eigh(matrix)
    return (vectors * tf.sqrt(tf.maximum(values, 0.0))) @ tf.transpose(vectors)
