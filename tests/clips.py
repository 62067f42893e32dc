"""Small video clips made for the tests of several modules (encoded with PyAV directly, not with the
module under test)."""

from fractions import Fraction

import av
import numpy as np

from stylekeras.image_io import load_image


def pan_frames(content_path, count: int = 5, width: int = 48, height: int = 36) -> list[np.ndarray]:
    """A pan over the test photo, 2 px to the right per frame."""
    photo = load_image(content_path)
    return [photo[8:8 + height, 2 * index:2 * index + width] for index in range(count)]


def make_clip(path, frames, rate=12, pts=None, audio_seconds=None, orientation=None):
    """Encode `frames` with PyAV directly (not with the module under test), optionally with a sine tone
    and a display matrix `orientation` = (degrees, hflip, vflip): turn them that many degrees
    counterclockwise, then mirror them (as phones mark portrait and selfie video); no frames: a file with
    the sound only."""
    with av.open(str(path), "w") as container:
        audio = container.add_stream("aac", rate=16000) if audio_seconds else None
        if frames:
            stream = container.add_stream("libx264", rate=rate)
            stream.height, stream.width = frames[0].shape[:2]
            stream.pix_fmt = "yuv420p"
            stream.time_base = Fraction(1, rate)
            if orientation is not None:
                degrees, hflip, vflip = orientation
                stream.set_display_rotation(degrees, hflip=hflip, vflip=vflip)
        for index, pixels in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.round(pixels * 255).astype(np.uint8), format="rgb24")
            frame.pts = index if pts is None else pts[index]
            frame.time_base = stream.time_base
            container.mux(stream.encode(frame))
        if frames:
            container.mux(stream.encode())
        if audio is not None:
            samples = np.sin(np.arange(int(16000 * audio_seconds)) * 2 * np.pi * 440 / 16000).astype(np.float32)
            for start in range(0, samples.size, 1024):
                chunk = av.AudioFrame.from_ndarray(samples[None, start:start + 1024], format="flt", layout="mono")
                chunk.sample_rate, chunk.pts = 16000, start
                container.mux(audio.encode(chunk))
            container.mux(audio.encode())
    return path
