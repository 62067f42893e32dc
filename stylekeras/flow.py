"""Optical flow between video frames, warping along it, and where it can be trusted (Ruder, Dosovitskiy &
Brox, "Artistic style transfer for videos", GCPR 2016, section 3.1).

Flow comes from OpenCV's DIS (Kroeger et al., ECCV 2016): dense, maintained, and fast enough on a CPU to
cost a small fraction of a frame's stylization (BENCHMARKS.md, "Video"). Needs the `video` extra.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stylekeras.errors import import_extra


def _cv2():
    return import_extra("cv2", "video", "optical flow")


@dataclass(frozen=True)
class FrameMotion:
    """How frame t relates to frame t−1: `backward` flow (H×W×2, (dx, dy) from each pixel of frame t to
    where it was in frame t−1) and `consistency` (H×W, 1 where that flow is reliable, 0 at disocclusions,
    motion boundaries and what enters the frame: `consistency`)."""

    backward: np.ndarray
    consistency: np.ndarray

    def warp(self, previous: np.ndarray) -> np.ndarray:
        """An image of frame t−1 in [0, 1] (e.g. its stylization) moved onto frame t. Bicubic: bilinear
        sampling blurs, and a stylization carried from frame to frame would blur a little more each time."""
        return np.clip(warp(previous, self.backward, "cubic"), 0.0, 1.0)


def optical_flow(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Dense flow from `source` to `target` (H×W×3 in [0, 1]): for each pixel of `source`, the (dx, dy)
    to the same point in `target`. DIS at OpenCV's "medium" preset, on the frames' luminance."""
    cv2 = _cv2()
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(_gray(source), _gray(target), None)


def warp(image: np.ndarray, flow: np.ndarray, interpolation: str = "linear") -> np.ndarray:
    """`image` sampled at x + flow(x), "linear" or "cubic" (sharper: a frame warped again and again
    keeps its detail; values may overshoot the input's range); points outside take the nearest edge pixel."""
    cv2 = _cv2()
    height, width = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return cv2.remap(np.ascontiguousarray(image, dtype=np.float32), grid_x + flow[..., 0], grid_y + flow[..., 1],
                     {"linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC}[interpolation],
                     borderMode=cv2.BORDER_REPLICATE)


def consistency(backward: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """Ruder et al.'s reliability of the `backward` flow (frame t → t−1) given the `forward` one
    (t−1 → t): 0 where following one and then the other does not come back (eq. 6, disocclusion:
    |w̃ + ŵ|² > 0.01 (|w̃|² + |ŵ|²) + 0.5, with w̃ the forward flow at the point ŵ leads to), where the
    flow changes sharply (eq. 7, motion boundary: |∇û|² + |∇v̂|² > 0.01 |ŵ|² + 0.002) and where it leads
    out of the frame (what enters the picture has no past: the warp would repeat the edge); 1 elsewhere."""
    forward_there = warp(forward, backward)
    round_trip = np.sum((forward_there + backward) ** 2, axis=-1)
    disoccluded = round_trip > 0.01 * (np.sum(forward_there**2, axis=-1) + np.sum(backward**2, axis=-1)) + 0.5
    gradients = sum(np.sum(np.stack(np.gradient(backward[..., axis]), -1) ** 2, axis=-1) for axis in (0, 1))
    boundary = gradients > 0.01 * np.sum(backward**2, axis=-1) + 0.002
    height, width = backward.shape[:2]
    rows, columns = np.mgrid[0:height, 0:width]
    x, y = columns + backward[..., 0], rows + backward[..., 1]
    outside = (x < 0) | (x > width - 1) | (y < 0) | (y > height - 1)
    return (~(disoccluded | boundary | outside)).astype(np.float32)


def frame_motion(previous: np.ndarray, current: np.ndarray) -> FrameMotion:
    """The flows between two consecutive input frames and the mask of where the backward one is reliable."""
    backward = optical_flow(current, previous)
    return FrameMotion(backward, consistency(backward, optical_flow(previous, current)))


def warping_error(previous: np.ndarray, current: np.ndarray, motion: FrameMotion) -> float:
    """Temporal consistency of two consecutive output frames: the mean squared difference between frame t
    and frame t−1 warped onto it, over the pixels the mask trusts (images in [0, 1])."""
    mask = motion.consistency[..., None]
    difference = (current - motion.warp(previous)) ** 2 * mask
    return float(difference.sum() / max(mask.sum() * current.shape[-1], 1.0))


def _gray(image: np.ndarray) -> np.ndarray:
    return np.round(np.clip(image @ np.array([0.299, 0.587, 0.114], np.float32), 0, 1) * 255).astype(np.uint8)
