"""Colour control from Gatys, Bethge, Hertzmann & Shechtman 2017, "Preserving Color in Neural Artistic
Style Transfer" (arXiv:1606.05897) / "Controlling Perceptual Factors in Neural Style Transfer" (CVPR 2017).

Images are float32 H×W×3 RGB arrays in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# NTSC RGB → YIQ (luminance Y, chroma I and Q), as used by Gatys et al. 2017 for luminance-only transfer.
_RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], np.float32)
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ).astype(np.float32)
# The largest factor `match_color_statistics` stretches any colour direction by.
MAX_COLOR_GAIN = 8.0


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


def match_color_statistics(source: np.ndarray, target: np.ndarray | Sequence[np.ndarray],
                           weights: Sequence[float] | None = None) -> np.ndarray:
    """Linearly transform `source`'s colours so their mean and covariance equal `target`'s — or, for
    several target images, those of their mixture with `weights` (default equal; e.g. blended styles).

    x' = A (x − μ_s) + μ_t with A = Σ_t^½ Σ_s^−½ (symmetric square roots): the "colour histogram matching"
    method of Gatys et al. 2017: the style image to the photo's colours (`preserve_color="histogram"`) or
    the photo to the style's (`init="palette"`). No colour direction is stretched more than `MAX_COLOR_GAIN`.
    """
    pixels = source.reshape(-1, 3).astype(np.float64)
    mean_s = pixels.mean(0)
    cov_s = np.cov(pixels, rowvar=False) + 1e-5 * np.eye(3)
    mean_t, cov_t = _mixture_statistics([target] if isinstance(target, np.ndarray) else list(target), weights)
    cov_t = cov_t + 1e-5 * np.eye(3)
    transform = _sqrtm(cov_t) @ np.linalg.inv(_sqrtm(cov_s))
    # An almost grey source has colour only from noise and JPEG blocks; unbounded, the match would blow
    # them up into coloured blotches. The quality benchmark's photo × painting pairs stay under the cap.
    left, gains, right = np.linalg.svd(transform)
    if gains[0] > MAX_COLOR_GAIN:
        transform = (left * np.minimum(gains, MAX_COLOR_GAIN)) @ right
    matched = (pixels - mean_s) @ transform.T + mean_t
    return np.clip(matched, 0.0, 1.0).reshape(source.shape).astype(np.float32)


def _mixture_statistics(images: list[np.ndarray], weights: Sequence[float] | None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of the colours of `images` pooled with `weights`."""
    samples = [image.reshape(-1, 3).astype(np.float64) for image in images]
    if len(samples) == 1:
        return samples[0].mean(0), np.cov(samples[0], rowvar=False)
    weights = np.full(len(samples), 1.0 / len(samples)) if weights is None else np.asarray(weights) / np.sum(weights)
    means = [sample.mean(0) for sample in samples]
    mean = sum(weight * m for weight, m in zip(weights, means))
    second_moment = sum(weight * (np.cov(sample, rowvar=False) + np.outer(m, m))
                        for weight, sample, m in zip(weights, samples, means))
    return mean, second_moment - np.outer(mean, mean)


def _sqrtm(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T
