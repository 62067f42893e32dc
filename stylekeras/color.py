"""Colour control from Gatys, Bethge, Hertzmann & Shechtman 2017, "Preserving Color in Neural Artistic
Style Transfer" (arXiv:1606.05897) / "Controlling Perceptual Factors in Neural Style Transfer" (CVPR 2017).

Images are float32 H×W×3 RGB arrays in [0, 1].
"""

from __future__ import annotations

import numpy as np

# NTSC RGB → YIQ (luminance Y, chroma I and Q), as used by Gatys et al. 2017 for luminance-only transfer.
_RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], np.float32)
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ).astype(np.float32)


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


def match_color_statistics(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Linearly transform `source`'s colours so their mean and covariance equal `target`'s.

    x' = A (x − μ_s) + μ_t with A = Σ_t^½ Σ_s^−½ (symmetric square roots): the "colour histogram matching"
    method of Gatys et al. 2017, applied to the style image before transfer.
    """
    pixels = source.reshape(-1, 3).astype(np.float64)
    reference = target.reshape(-1, 3).astype(np.float64)
    mean_s, mean_t = pixels.mean(0), reference.mean(0)
    cov_s = np.cov(pixels, rowvar=False) + 1e-5 * np.eye(3)
    cov_t = np.cov(reference, rowvar=False) + 1e-5 * np.eye(3)
    transform = _sqrtm(cov_t) @ np.linalg.inv(_sqrtm(cov_s))
    matched = (pixels - mean_s) @ transform.T + mean_t
    return np.clip(matched, 0.0, 1.0).reshape(source.shape).astype(np.float32)


def _sqrtm(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T
