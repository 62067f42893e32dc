"""Colour control from Gatys, Bethge, Hertzmann & Shechtman 2017, "Preserving Color in Neural Artistic
Style Transfer" (arXiv:1606.05897) / "Controlling Perceptual Factors in Neural Style Transfer" (CVPR 2017).

Images are float32 H×W×3 RGB arrays in [0, 1]. The mean-and-covariance match is written in TensorFlow, so
a served stylizer's graph and the library run the same ops; the starts' sliced transport and chroma
smoothing, which no served graph runs, are numpy.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import tensorflow as tf

# NTSC RGB → YIQ (luminance Y, chroma I and Q), as used by Gatys et al. 2017 for luminance-only transfer.
_RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], np.float32)
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ).astype(np.float32)
# The largest factor `match_color_statistics` stretches any colour direction by.
MAX_COLOR_GAIN = 8.0
# `transport_colors`: the random rotations it matches the three 1-D distributions along (after 10, the
# result's quantiles along other directions are the painting's to 0.01), the pixels of each side it
# measures the distributions on, and the quantiles each 1-D map interpolates between.
TRANSPORT_ROTATIONS = 10
TRANSPORT_SAMPLES = 16384
TRANSPORT_QUANTILES = 1024
# The pieces `transport_colors` maps a photo's pixels in, one thread each: one per CPU this process may run
# on (a container's or `taskset`'s share, where the OS tells it), at most 8.
TRANSPORT_THREADS = min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
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


def smooth_chroma(image: np.ndarray, sigma: float = CHROMA_SMOOTHING) -> np.ndarray:
    """`image` (H×W×3 in [0, 1]) with its chroma (YIQ's I and Q) blurred by a Gaussian of `sigma` (> 0) px and
    its luminance kept as it is (float32, clipped to [0, 1]). Applied before a colour map: a map that
    stretches the photo's colours (a nearly grey photo's, most) stretches their noise alike, into a grain
    the losses do not remove, while the eye and the network see detail in the luminance, not the chroma."""
    yiq = rgb_to_yiq(np.asarray(image, np.float32))
    radius = max(1, math.ceil(3 * sigma))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    chroma = yiq[..., 1:]
    for axis in (0, 1):
        length = chroma.shape[axis]
        padded = np.pad(chroma, [(radius, radius) if a == axis else (0, 0) for a in range(3)], mode="symmetric")
        chroma = sum(tap * np.take(padded, np.arange(offset, offset + length), axis=axis)
                     for offset, tap in enumerate(taps))
    return yiq_to_rgb(np.concatenate([yiq[..., :1], chroma], -1)).clip(0.0, 1.0).astype(np.float32)


def match_color_statistics(source: np.ndarray, target: np.ndarray | Sequence[np.ndarray],
                           weights: Sequence[float] | None = None) -> np.ndarray:
    """Linearly transform `source`'s colours so their mean and covariance equal `target`'s — or, for
    several target images, those of their mixture with `weights` (default equal; e.g. blended styles).

    The "colour histogram matching" method of Gatys et al. 2017: the style image to the photo's colours
    (`preserve_color="histogram"`) or the photo to the style's (`init="palette"`); see `match_to_statistics`.
    """
    mean, covariance = color_statistics([target] if isinstance(target, np.ndarray) else list(target), weights)
    return match_to_statistics(source, mean, covariance).numpy()


def transport_colors(source: np.ndarray, target: Sequence[np.ndarray], weights: Sequence[float] | None = None,
                     seed: int = 0) -> np.ndarray:
    """`source` (H×W×3) recoloured so its colours are distributed as those of the `target` images pooled
    with `weights` (default equal): their whole distribution, where `match_color_statistics` matches two
    moments. Sliced optimal transport (Pitié, Kokaram & Dahyot 2005; Rabin, Peyré, Delon & Bernot 2011): in
    each of `TRANSPORT_ROTATIONS` random orthonormal bases, every coordinate of the source's colours is
    mapped onto the target's by their quantiles. Each map is monotone, so within a step the photo's colours
    keep their order along the coordinate it maps (not along every direction overall). Measured on
    `TRANSPORT_SAMPLES` pixels of each side (seeded by `seed`), applied to all of them (in `TRANSPORT_THREADS`
    pieces at once); float32 in [0, 1].
    """
    rng = np.random.default_rng(seed)
    weights = [1.0 / len(target)] * len(target) if weights is None else [w / sum(weights) for w in weights]
    pooled = np.concatenate([_sample_pixels(image, max(1, round(weight * TRANSPORT_SAMPLES)), rng)
                             for image, weight in zip(target, weights)]).T
    pixels = np.asarray(source, np.float64).reshape(-1, 3).T  # [3, n]
    sample = _sample_pixels(np.asarray(source), min(TRANSPORT_SAMPLES, pixels.shape[1]), rng).T
    levels = (np.arange(TRANSPORT_QUANTILES) + 0.5) / TRANSPORT_QUANTILES
    maps = []
    for _ in range(TRANSPORT_ROTATIONS):
        basis, _ = np.linalg.qr(rng.standard_normal((3, 3)))
        sample, goal = basis.T @ sample, basis.T @ pooled
        # x → F_target⁻¹(F_source(x)) along each coordinate, piecewise linear between the sides' quantiles
        # (of sorted values: numpy's quantile partitions at every level, which is quick on sorted input).
        quantiles = [(np.quantile(np.sort(sample[axis]), levels), np.quantile(np.sort(goal[axis]), levels))
                     for axis in range(3)]
        maps.append((basis, quantiles))
        sample = basis @ _map_coordinates(sample, quantiles)
    # np.interp releases the GIL: the pixels, mapped in parallel pieces, come out as in one.
    pieces = np.array_split(pixels, TRANSPORT_THREADS, axis=1)
    with ThreadPoolExecutor(len(pieces)) as pool:
        mapped = np.concatenate(list(pool.map(lambda piece: _transport(piece, maps), pieces)), axis=1)
    return mapped.T.reshape(np.shape(source)).clip(0.0, 1.0).astype(np.float32)


def _transport(pixels: np.ndarray, maps: list[tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]]
               ) -> np.ndarray:
    """Colours `[3, n]` through each (basis, per-coordinate quantile map) of `transport_colors` in turn."""
    for basis, quantiles in maps:
        pixels = basis @ _map_coordinates(basis.T @ pixels, quantiles)
    return pixels


def _map_coordinates(points: np.ndarray, quantiles: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """`points` `[3, n]` with each coordinate mapped from its first quantiles onto its second."""
    return np.stack([np.interp(points[axis], known, wanted) for axis, (known, wanted) in enumerate(quantiles)])


def _sample_pixels(image: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` pixels of an H×W×3 image drawn at random (with replacement only when it has fewer, so
    pooled images keep their weights whatever their sizes), float64 `[count, 3]`."""
    pixels = np.asarray(image, np.float64).reshape(-1, 3)
    return pixels[rng.choice(len(pixels), count, replace=len(pixels) < count)]


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
