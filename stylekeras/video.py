"""Stylize a video with temporal consistency (Ruder, Dosovitskiy & Brox, "Artistic style transfer for
videos", GCPR 2016): each frame starts from the previous frame's stylization warped onto it by optical flow,
and a temporal loss keeps it there wherever the flow is reliable. Frames stylized on their own each find
a different optimum and flicker.

    >>> from stylekeras.settings import TransferSettings
    >>> from stylekeras.video import transfer_video
    >>> transfer_video("clip.mp4", "painting.jpg", "clip_styled.mp4", settings=TransferSettings(size=256))

`read_clip` reads a clip's timestamps and `Clip.frames` decodes it (PyAV, FFmpeg inside its wheel),
`stylize_frames` stylizes frames one at a time, `write_clip` encodes with the input's frame rate and
audio. Needs the `video` extra (PyAV, and OpenCV for the optical flow).
"""

from __future__ import annotations

import itertools
import math
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from stylekeras import flow
from stylekeras.atomic import atomic_write, remove_leftovers
from stylekeras.defaults import DEFAULT_MAX_PIXELS, DEFAULT_TEMPORAL_WEIGHT
from stylekeras.errors import StyleKerasError, import_extra
from stylekeras.image_io import ImageSource, check_output_path, load_image, longer_side_shape, save_image, to_uint8
from stylekeras.report import report_matches, run_report
from stylekeras.stylize import FramePrior, StepCallback, StyleResult, Stylizer, TransferSettings

# Output formats by suffix: the container and its video codec (H.264, or VP9 for WebM), and the audio
# codecs it takes as they are (others are re-encoded to the container's default).
FORMATS = {
    ".mp4": ("mp4", "libx264", {"aac", "mp3", "alac", "opus"}),
    ".mov": ("mov", "libx264", {"aac", "mp3", "alac", "pcm_s16le"}),
    ".mkv": ("matroska", "libx264", None),  # None: any codec
    ".webm": ("webm", "libvpx-vp9", {"opus", "vorbis"}),
}
# H.264's "visually lossless" quality: the encoder should not add flicker of its own.
CRF = "18"


def _av():
    return import_extra("av", "video", "video")


@dataclass(frozen=True)
class VideoSettings:
    """How a clip is cut and how its frames are tied together.

    start, duration: the part of the clip to stylize, in seconds (duration None: to the end); max_frames:
    at most this many frames of it. temporal_weight: λ of the temporal loss (0: only the warped start).
    frame_steps: steps of each frame after the first, at the output size in one scale — it starts from
    an already stylized image (None: half the first frame's `steps`, as Ruder et al.). temporal: False
    stylizes each frame on its own, as an image (it flickers; for comparison).
    """

    start: float = 0.0
    duration: float | None = None
    max_frames: int | None = None
    temporal_weight: float = DEFAULT_TEMPORAL_WEIGHT
    frame_steps: int | None = None
    temporal: bool = True

    def __post_init__(self) -> None:
        if not self.start >= 0:
            raise StyleKerasError(f"`start` must be ≥ 0 seconds, got {self.start}")
        if self.duration is not None and not self.duration > 0:
            raise StyleKerasError(f"`duration` must be > 0 seconds, got {self.duration}")
        if self.max_frames is not None and self.max_frames < 1:
            raise StyleKerasError(f"`max_frames` must be ≥ 1, got {self.max_frames}")
        if self.frame_steps is not None and self.frame_steps < 0:
            raise StyleKerasError(f"`frame_steps` must be ≥ 0, got {self.frame_steps}")
        if not (np.isfinite(self.temporal_weight) and self.temporal_weight >= 0):
            raise StyleKerasError(f"`temporal_weight` must be a finite number ≥ 0, got {self.temporal_weight}")

    def frame_settings(self, settings: TransferSettings) -> TransferSettings:
        """The settings of every frame after the first (the first is stylized with `settings` as they are)."""
        if not self.temporal:
            return settings
        steps = settings.steps // 2 if self.frame_steps is None else self.frame_steps
        return replace(settings, steps=steps, scales=1, start_size=None)


@dataclass(frozen=True)
class Clip:
    """The part of a video file to stylize: the file, its frame rate, the selected frames' times (seconds,
    as the file stores them), their (height, width) once decoded and turned upright, and how to turn them
    upright as the file's display matrix asks (phones mark portrait video and mirrored selfie video so):
    the degrees counterclockwise (0, 90, 180 or 270), then whether to mirror left to right. `frames()`
    decodes them one at a time, so a long clip never sits in memory."""

    path: Path
    rate: Fraction
    times: tuple[float, ...]
    shape: tuple[int, int]
    rotation: int = 0
    mirrored: bool = False

    @property
    def start(self) -> float:
        return self.times[0]

    @property
    def end(self) -> float:
        return self.times[-1] + 1 / self.rate

    def __len__(self) -> int:
        return len(self.times)

    def frames(self) -> Iterator[np.ndarray]:
        """The selected frames in order, each H×W×3 in [0, 1] at `shape`."""
        av = _av()
        half_frame = 0.5 / self.rate
        with av.open(str(self.path)) as container:
            count = 0
            try:
                for frame in container.decode(container.streams.video[0]):
                    if frame.time is None or frame.time < self.start - half_frame:
                        continue
                    pixels = Image.fromarray(frame.to_ndarray(format="rgb24"))
                    if self.rotation:
                        pixels = pixels.transpose(_UPRIGHT[self.rotation])
                    if self.mirrored:
                        pixels = pixels.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
                    yield np.asarray(pixels.resize(self.shape[::-1], Image.LANCZOS), np.float32) / 255.0
                    count += 1
                    if count == len(self.times):
                        return
            except av.error.FFmpegError as error:
                raise StyleKerasError(f"'{self.path}' could not be decoded after frame {count} "
                                      f"({_reason(error)})") from None
        raise StyleKerasError(f"'{self.path}' ended after {count} of its {len(self.times)} frames")


@dataclass(frozen=True)
class VideoResult:
    """What `transfer_video` made: the output, its frame count and rate, the frames stylized by this call
    (the others were resumed from the frames folder), their seconds, and why it stopped early, if it did."""

    output: Path | None
    frames: int
    rate: Fraction
    stylized: int
    seconds: float
    stop_reason: str | None = None


def read_clip(path: str | Path, size: int | None, video: VideoSettings = VideoSettings(),
              max_pixels: int = DEFAULT_MAX_PIXELS) -> Clip:
    """The frames of `path` within `video`'s start, duration and max_frames (times from the first frame),
    to be resized so the longer side is `size` (None: as they are) and each side is even (H.264 stores
    colour at half resolution). Reads the container's timestamps, not the pictures: `Clip.frames` decodes.

    Refuses, naming the file: what is not a video (a still image included), a clip with no frames in the
    range, a variable frame rate (the output could not keep the timing) and frames above `max_pixels`."""
    av = _av()
    path = Path(path)
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as error:
        raise StyleKerasError(f"'{path}' is not a readable video ({_reason(error)})") from None
    with container:
        if container.format.name == "image2" or container.format.name.endswith("_pipe"):
            raise StyleKerasError(f"'{path}' is a still image, not a video; stylize it with `stylekeras transfer`")
        if not container.streams.video:
            raise StyleKerasError(f"'{path}' has no video stream")
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        if width * height > max_pixels:
            raise StyleKerasError(f"'{path}' has {width}×{height} px frames, more than `max_pixels={max_pixels}`")
        rate = stream.average_rate or stream.guessed_rate
        if not rate:
            raise StyleKerasError(f"'{path}' does not say its frame rate")
        try:
            times = _frame_times(container, stream)
            rotation, mirrored = _display_orientation(container, stream)
        except av.error.FFmpegError as error:
            raise StyleKerasError(f"'{path}' could not be read ({_reason(error)})") from None
    if not times:
        raise StyleKerasError(f"'{path}' has no frames")
    intervals = np.diff(times)
    if intervals.size and np.max(np.abs(intervals - 1 / rate)) > 0.5 / rate:
        raise StyleKerasError(f"'{path}' has a variable frame rate (frames {np.min(intervals):.3f} s to "
                              f"{np.max(intervals):.3f} s apart); convert it to a constant rate first, e.g. "
                              f"ffmpeg -i IN -vsync cfr -r {float(rate):g} OUT.mp4")
    first, half_frame = times[0], 0.5 / rate
    end = video.start + video.duration if video.duration is not None else math.inf
    selected = [time for time in times if video.start - half_frame <= time - first < end - half_frame]
    selected = selected[:video.max_frames]
    if not selected:
        raise StyleKerasError(f"'{path}' has no frames from {video.start:g} s"
                              + (f" to {end:g} s" if video.duration is not None else "")
                              + f" (it is {len(times) / float(rate):.3g} s long)")
    upright = (width, height) if rotation in (90, 270) else (height, width)
    shape = _even(longer_side_shape(upright, size) if size else upright)
    return Clip(path, Fraction(rate), tuple(selected), shape, rotation, mirrored)


_UPRIGHT = {90: Image.Transpose.ROTATE_90, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_270}


def _display_orientation(container, stream) -> tuple[int, bool]:
    """What shows the video upright, from the display matrix of its first frame (where phones note portrait
    and mirrored recording): a turn counterclockwise in degrees (0, 90, 180 or 270, to the nearest quarter
    turn), then whether to mirror left to right. (0, False) without a matrix."""
    av = _av()
    container.seek(0)
    for frame in container.decode(stream):
        matrix = frame.side_data.get(av.sidedata.sidedata.Type.DISPLAYMATRIX)
        if matrix is None:
            return 0, False
        # libavutil/display.h: a b u / c d v / x y w, row-major; a mirror after the turn negates a and c.
        a, b, _, c, d = np.frombuffer(bytes(matrix), np.int32)[:5].astype(np.float64)
        mirrored = bool(a * d - b * c < 0)
        if mirrored:
            a, c = -a, -c
        # The turn as av_display_rotation_get reads it (PyAV's `VideoFrame.rotation`, which ignores mirrors).
        return round(-math.degrees(math.atan2(b, a)) / 90) % 4 * 90, mirrored
    return 0, False


def _frame_times(container, stream) -> list[float]:
    """Every frame's presentation time in seconds, in order, from the packets (no decoding) when they all
    carry one, else from the decoded frames."""
    times = [None if packet.pts is None else packet.pts * packet.time_base
             for packet in container.demux(stream) if packet.size]
    if all(time is not None for time in times):
        return sorted(float(time) for time in times)
    container.seek(0)
    return [float(frame.time) for frame in container.decode(stream)]


def check_output(path: str | Path, inputs: Sequence[str | Path] = ()) -> Path:
    """Fail before any compute if a video cannot be written at `path`: an unknown suffix, an encoder this
    PyAV build lacks, a folder that is not writable, or one of the `inputs`."""
    return check_output_path(path, tuple(inputs), output_format)


def output_format(path: str | Path) -> tuple[str, str, set[str] | None]:
    """The container, video codec and copyable audio codecs for `path`'s suffix, or a one-line error (an
    unknown suffix, or an encoder this PyAV build lacks)."""
    av = _av()
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise StyleKerasError(f"`output`: '{path}' is not a video format stylekeras writes; use "
                              f"{', '.join(FORMATS)}")
    container, codec, audio = FORMATS[suffix]
    if codec not in av.codecs_available:
        raise StyleKerasError(f"`output`: this PyAV build has no {codec} encoder for {suffix}; try another of "
                              f"{', '.join(s for s, (_, c, _) in FORMATS.items() if c in av.codecs_available)}")
    return container, codec, audio


def write_clip(frames: Iterable[np.ndarray | str | Path], output: str | Path, rate: Fraction,
               audio_from: str | Path | None = None, start: float = 0.0, end: float | None = None) -> Path:
    """Encode `frames` (arrays in [0, 1] or image files, of one even size) at `rate` frames per second into
    `output`, atomically, with the first audio track of `audio_from` between `start` and `end` seconds (as
    that file's timestamps), copied as it is when the container takes its codec, else re-encoded."""
    av = _av()
    output = Path(output)
    container_format, codec, audio_codecs = output_format(output)
    frames = iter(frames)
    first = _frame_pixels(next(frames))
    with atomic_write(output) as file, av.open(file, "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.height, stream.width = first.shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": CRF} if codec == "libx264" else {"crf": "24", "b": "0"}
        source = av.open(str(audio_from)) if audio_from is not None else None
        try:
            audio = source.streams.audio[0] if source is not None and source.streams.audio else None
            copy = audio is not None and (audio_codecs is None or audio.codec_context.name in audio_codecs)
            audio_out = (None if audio is None else container.add_stream_from_template(audio) if copy
                         else container.add_stream(container.default_audio_codec, rate=audio.codec_context.sample_rate))
            for index, pixels in enumerate(itertools.chain([first], map(_frame_pixels, frames))):
                frame = av.VideoFrame.from_ndarray(to_uint8(pixels), format="rgb24")
                frame.pts = index
                container.mux(stream.encode(frame))
            container.mux(stream.encode())
            if audio is not None:
                _mux_audio(source, audio, container, audio_out, copy, start, end)
        finally:
            if source is not None:
                source.close()
    return output


def _mux_audio(source, audio, container, audio_out, copy: bool, start: float, end: float | None) -> None:
    """The audio between `start` and `end`, moved to start at 0 (packets copied, or frames re-encoded)."""
    offset = int(round(start / audio.time_base))

    def within(pts) -> bool:
        return pts is not None and pts >= offset and (end is None or pts * audio.time_base < end)

    if copy:
        for packet in source.demux(audio):
            if within(packet.pts):
                packet.pts -= offset
                packet.dts = None if packet.dts is None else packet.dts - offset
                packet.stream = audio_out
                container.mux(packet)
        return
    for frame in source.decode(audio):
        if within(frame.pts):
            frame.pts = None
            container.mux(audio_out.encode(frame))
    container.mux(audio_out.encode())


def stylize_frames(
    stylizer: Stylizer,
    frames: Iterable[np.ndarray],
    style: ImageSource | Sequence[ImageSource],
    *,
    settings: TransferSettings = TransferSettings(),
    video: VideoSettings = VideoSettings(),
    done: int = 0,
    last: np.ndarray | None = None,
    callback: Callable[[int], StepCallback | None] | None = None,
    within_step: Callable[[float], None] | None = None,
    **transfer_options,
) -> Iterator[StyleResult]:
    """Stylize `frames` (e.g. `Clip.frames()`) in order and yield each frame's `StyleResult` as it finishes
    (stop iterating to stop). Frames after the first start from the previous result warped by the flow
    between the input frames and keep close to it (`FramePrior`), unless `video.temporal` is False.

    To continue an earlier run, `done` says how many of the first frames it stylized and `last` is the
    stylization of the last of those. Each result is rounded to 8 bits before the next frame warps it, as a
    frame read back from a file is: a resumed clip equals one run without a stop. `callback(index)` gives
    the per-step callback of frame `index`; `transfer_options` go to `Stylizer.transfer` (e.g.
    `style_masks`). The style's targets are computed once, by the first frame."""
    if done and last is None:
        raise StyleKerasError("`last`: continuing after `done` frames needs the last one's stylization")
    later = video.frame_settings(settings)
    previous = _rounded(last) if done else None  # the last stylized frame
    last_input = None
    for index, frame in enumerate(frames):
        if index < done:
            last_input = frame
            continue
        prior = None
        if video.temporal and previous is not None:
            motion = flow.frame_motion(last_input, frame)
            prior = FramePrior(motion.warp(previous), motion.consistency, video.temporal_weight)
        result = stylizer.transfer(frame, style, settings=later if index else settings, prior=prior,
                                   callback=callback(index) if callback else None, within_step=within_step,
                                   **transfer_options)
        previous, last_input = _rounded(result.image), frame
        yield result
        if result.stop_reason is not None:
            return


def transfer_video(
    clip: str | Path | Clip,
    style: str | Path | Sequence[str | Path],
    output: str | Path,
    *,
    stylizer: Stylizer | None = None,
    settings: TransferSettings = TransferSettings(),
    video: VideoSettings = VideoSettings(),
    resume: bool = False,
    keep_frames: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    callback: Callable[[int, int], StepCallback | None] | None = None,
    within_step: Callable[[float], None] | None = None,
    command_line: dict | None = None,
    **transfer_options,
) -> VideoResult:
    """Stylize the video `clip` with `style` into `output` (.mp4, .mov, .mkv or .webm), keeping its frame
    rate and audio.

    Each frame is written as it finishes, atomically, to the folder `frames_folder(output)` (a PNG with its
    report); `resume=True` continues after the last frame there made with the same clip, style, model and
    settings, `frame_steps` aside (without it, an existing frames folder is refused, never overwritten).
    The video is encoded once every frame is done; the folder is then removed unless `keep_frames`.
    `callback(index, frames)` gives the per-step callback of frame `index` of `frames`; it and
    `within_step` may raise KeyboardInterrupt to stop (the frame is then not written). Everything is
    validated, and the clip's timestamps read, before the first step; `command_line` goes into each
    frame's report. `clip` may be what `read_clip(path, settings.size, video, max_pixels)` returned, so a
    caller can check the file before building a `Stylizer`.
    """
    styles = list(style) if isinstance(style, (list, tuple)) else [style]
    decoded = clip if isinstance(clip, Clip) else None
    clip_path = decoded.path if decoded else Path(clip)
    output = check_output(output, [clip_path, *styles])
    style_pixels = [load_image(path, label=f"style image {index}", max_pixels=max_pixels)
                    for index, path in enumerate(styles, start=1)]
    decoded = decoded or read_clip(clip_path, settings.size, video, max_pixels)
    stylizer = stylizer or Stylizer()
    folder = frames_folder(output)
    # A resumed clip may change `frame_steps`, as a resumed image may change its steps.
    expected = {"model": stylizer.description, "stop_reason": None,
                "video": {**asdict(video), "frame_steps": None, "settings": asdict(settings)}}
    inputs = {"clip": str(clip_path), "styles": [str(path) for path in styles]}
    paths = [folder / f"frame_{index:06d}.png" for index in range(len(decoded))]
    done = _finished_frames(paths, expected, inputs) if resume else []
    earlier = folder.is_dir() and any(folder.glob("frame_*.png"))
    if earlier and not resume:
        raise StyleKerasError(f"'{folder}' holds the frames of an earlier run; add `resume=True` to continue it, "
                              f"or remove the folder")
    if earlier and not done:
        raise StyleKerasError(f"`resume`: the frames in '{folder}' were made from another clip, style, model or "
                              f"settings; run those again, or remove the folder to start afresh")
    folder.mkdir(parents=True, exist_ok=True)
    if resume:  # what a killed write left: the next frame's temporary, the video's
        for path in [*paths[len(done):len(done) + 1], output]:
            remove_leftovers(path)
    seconds, stylized, stop_reason = 0.0, 0, None
    results = stylize_frames(stylizer, decoded.frames(), style_pixels, settings=settings, video=video,
                             done=len(done), last=load_image(done[-1]) if done else None,
                             callback=callback and (lambda index: callback(index, len(paths))),
                             within_step=within_step, **transfer_options)
    for index, result in enumerate(results, start=len(done)):
        seconds += result.seconds
        if result.stop_reason is not None:
            stop_reason = f"frame {index + 1} of {len(paths)}: {result.stop_reason}"
            break
        report = run_report(result, stylizer.description, {**inputs, "frame": index}, video=expected["video"],
                            **({"command_line": command_line} if command_line else {}))
        save_image(result.image, paths[index], report)
        stylized += 1
    if stop_reason is not None:
        return VideoResult(None, len(done) + stylized, decoded.rate, stylized, seconds, stop_reason)
    write_clip(paths, output, decoded.rate, clip_path, decoded.start, decoded.end)
    if not keep_frames:
        shutil.rmtree(folder)
    return VideoResult(output, len(paths), decoded.rate, stylized, seconds)


def frames_folder(output: str | Path) -> Path:
    """Where `transfer_video` keeps the finished frames of `output` until it is encoded: OUTPUT_STEM.frames/."""
    output = Path(output)
    return output.with_name(f"{output.stem}.frames")


def _finished_frames(paths: list[Path], expected: dict, inputs: dict) -> list[Path]:
    """The frames an earlier run of the same job finished, in order up to the first missing one."""
    done = []
    for index, path in enumerate(paths):
        if not report_matches(path, {**expected, "inputs": {**inputs, "frame": index}}):
            break
        done.append(path)
    return done


def _frame_pixels(item: np.ndarray | str | Path) -> np.ndarray:
    return load_image(item) if isinstance(item, (str, Path)) else np.asarray(item, np.float32)


def _rounded(image: np.ndarray) -> np.ndarray:
    return to_uint8(image).astype(np.float32) / 255.0


def _even(shape: tuple[int, int]) -> tuple[int, int]:
    return tuple(max(2, side - side % 2) for side in shape)


def _reason(error: Exception) -> str:
    return getattr(error, "strerror", None) or str(error)
