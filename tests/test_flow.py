"""stylekeras.flow: optical flow, warping, the consistency mask and the warping error."""

import numpy as np
import pytest

from stylekeras import flow
from stylekeras.image_io import load_image

pytest.importorskip("cv2")


@pytest.fixture(scope="module")
def pan(content_path):
    """Two 48×40 crops of the test photo, the second 3 px further right (its content moved 3 px left)."""
    photo = load_image(content_path)
    return photo[10:50, 4:52], photo[10:50, 7:55]


def test_flow_finds_a_known_shift(pan):
    previous, current = pan
    backward = flow.optical_flow(current, previous)  # each pixel of `current` came from 3 px to its right
    inner = backward[8:-8, 8:-8]
    assert np.median(inner[..., 0]) == pytest.approx(3.0, abs=0.3)
    assert np.median(inner[..., 1]) == pytest.approx(0.0, abs=0.3)


def test_warp_follows_the_flow():
    image = np.random.default_rng(0).uniform(size=(20, 30, 3)).astype(np.float32)
    shift = np.zeros((20, 30, 2), np.float32)
    shift[..., 0] = 2.0  # sample 2 px to the right
    warped = flow.warp(image, shift)
    np.testing.assert_allclose(warped[:, :-2], image[:, 2:], atol=1e-6)
    np.testing.assert_allclose(warped[:, -2:], image[:, -1:].repeat(2, axis=1), atol=1e-6)  # edge replicated


def test_consistency_marks_disocclusions_and_motion_boundaries():
    backward = np.zeros((30, 40, 2), np.float32)
    forward = np.zeros((30, 40, 2), np.float32)
    assert flow.consistency(backward, forward).min() == 1.0  # nothing moves: every pixel trusted
    # A square moves 4 px right: backward flow −4 inside it in frame t; the forward flow of frame t−1
    # carries it +4 from its old place, and the strip it uncovers has no forward match.
    backward[10:20, 14:24, 0] = -4.0
    forward[10:20, 10:20, 0] = 4.0
    mask = flow.consistency(backward, forward)
    assert mask[15, 18] == 1.0  # inside the square, both flows agree
    assert mask[15, 5] == 1.0 and mask[2, 30] == 1.0  # the still background
    assert mask[15, 14] == 0.0 and mask[15, 23] == 0.0  # the square's edges: motion boundaries
    assert mask[15, 10:13].max() == 0.0  # where the square was: the backward flow (0) meets its forward flow (+4)


def test_warping_error_is_zero_for_a_perfect_warp_and_measures_the_rest(pan):
    previous, current = pan
    motion = flow.FrameMotion(np.zeros(current.shape[:2] + (2,), np.float32), np.ones(current.shape[:2], np.float32))
    assert flow.warping_error(current, current, motion) == 0.0
    assert flow.warping_error(previous, current, motion) == pytest.approx(np.mean((current - previous) ** 2), rel=1e-5)
    moved = flow.frame_motion(previous, current)
    assert flow.warping_error(previous, current, moved) < 0.1 * flow.warping_error(previous, current, motion)
