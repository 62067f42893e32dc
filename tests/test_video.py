"""stylekeras.video: decoding and encoding clips, temporally consistent frames, resuming a clip."""

import numpy as np
import pytest

from stylekeras import flow
from stylekeras.errors import StyleKerasError
from stylekeras.image_io import load_image, read_report
from stylekeras.stylize import FramePrior, TransferSettings

av = pytest.importorskip("av")
pytest.importorskip("cv2")

from stylekeras import video  # noqa: E402
from clips import make_clip, pan_frames  # noqa: E402

# A few fast steps at a size every layer of the random test network accepts.
SETTINGS = TransferSettings(size=48, steps=6, optimizer="adam", learning_rate=0.05, scales=1)


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory, content_path):
    return make_clip(tmp_path_factory.mktemp("clip") / "pan.mp4", pan_frames(content_path), audio_seconds=5 / 12)


def streams(path):
    with av.open(str(path)) as container:
        video_stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video_stream))
        rate = video_stream.average_rate
    with av.open(str(path)) as container:
        audio = [float(packet.pts * packet.time_base) for packet in container.demux(container.streams.audio[0])
                 if packet.pts is not None] if container.streams.audio else []
    return frames, rate, audio


def test_read_clip_keeps_frames_rate_and_makes_the_size_even(clip_path, content_path):
    clip = video.read_clip(clip_path, None)
    assert len(clip) == 5 and clip.rate == 12 and clip.start == 0 and clip.end == pytest.approx(5 / 12)
    frames = list(clip.frames())
    # H.264 keeps colour at half resolution: close on average, not pixel by pixel at 48 px.
    assert len(frames) == 5 and np.mean(np.abs(frames[2] - pan_frames(content_path)[2])) < 0.04
    small = video.read_clip(clip_path, 31)
    assert small.shape == (22, 30) and next(small.frames()).shape == (22, 30, 3)  # 31×23.25 → even sides


@pytest.mark.parametrize("rotation, turns, hflip, vflip", [
    (90, 1, False, False), (-90, -1, False, False), (180, 2, False, False),
    (0, 0, True, False), (0, 0, False, True), (90, 1, True, False), (-90, -1, False, True),  # mirrored, as selfies
])
def test_read_clip_turns_and_mirrors_video_upright(tmp_path, content_path, rotation, turns, hflip, vflip):
    frames = pan_frames(content_path, count=2)  # 36×48 as stored; the display matrix turns and mirrors them
    clip = video.read_clip(make_clip(tmp_path / "phone.mp4", frames, orientation=(rotation, hflip, vflip)), None)
    upright = np.rot90(frames[0], turns)[::-1 if vflip else 1, ::-1 if hflip else 1]
    assert clip.shape == upright.shape[:2]
    first = next(clip.frames())
    assert first.shape == upright.shape and np.mean(np.abs(first - upright)) < 0.04
    assert video.read_clip(tmp_path / "phone.mp4", 24).shape == ((24, 18) if turns % 2 else (18, 24))


def test_read_clip_cuts_by_start_duration_and_max_frames(clip_path):
    clip = video.read_clip(clip_path, None, video.VideoSettings(start=1 / 12, duration=3 / 12))
    assert len(clip) == 3 and clip.start == pytest.approx(1 / 12) and len(list(clip.frames())) == 3
    whole = list(video.read_clip(clip_path, None).frames())
    np.testing.assert_array_equal(next(clip.frames()), whole[1])
    assert len(video.read_clip(clip_path, None, video.VideoSettings(start=1 / 12, max_frames=2))) == 2


@pytest.mark.parametrize("make, message", [
    (lambda path, frames: (path.write_text("not a video"), path)[1], "is not a readable video"),
    (lambda path, frames: make_clip(path, frames, pts=[0, 1, 2, 4, 5]), "variable frame rate"),
    (lambda path, frames: make_clip(path, [], audio_seconds=0.5), "has no video stream"),
    (lambda path, frames: path.parent / "missing.mp4", "No such file or directory"),
])
def test_read_clip_refuses_bad_input_in_one_line(tmp_path, content_path, make, message):
    path = make(tmp_path / "bad.mp4", pan_frames(content_path))
    with pytest.raises(StyleKerasError, match=message) as error:
        video.read_clip(path, None)
    assert "\n" not in str(error.value)


def test_read_clip_refuses_a_range_without_frames_and_frames_too_large(clip_path):
    with pytest.raises(StyleKerasError, match=r"has no frames from 10 s \(it is 0.417 s long\)"):
        video.read_clip(clip_path, None, video.VideoSettings(start=10))
    with pytest.raises(StyleKerasError, match="more than `max_pixels=100`"):
        video.read_clip(clip_path, None, max_pixels=100)


def test_output_format_refuses_unknown_suffixes_and_missing_encoders(monkeypatch):
    with pytest.raises(StyleKerasError, match="not a video format stylekeras writes; use .mp4"):
        video.output_format("out.avi")
    monkeypatch.setattr(av, "codecs_available", av.codecs_available - {"libx264"})
    with pytest.raises(StyleKerasError, match="no libx264 encoder for .mp4; try another of .webm"):
        video.output_format("out.mp4")


def test_without_pyav_one_line_says_what_to_install(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "av", None)
    with pytest.raises(StyleKerasError, match=r'pip install "stylekeras\[video\]"'):
        video.read_clip("clip.mp4", None)


@pytest.mark.parametrize("suffix", [".mp4", ".webm"])
def test_write_clip_keeps_rate_and_the_audio_of_the_range(tmp_path, clip_path, suffix):
    clip = video.read_clip(clip_path, None, video.VideoSettings(start=2 / 12))
    output = video.write_clip(clip.frames(), tmp_path / f"out{suffix}", clip.rate, clip_path, clip.start, clip.end)
    frames, rate, audio = streams(output)
    assert (frames, rate) == (3, 12)
    assert audio and audio[0] < 0.05 and audio[-1] < 3 / 12 + 0.1  # from the cut's start, shifted to 0
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_frame_prior_is_the_start_and_the_temporal_loss_pulls_toward_it(random_stylizer, content_path, style_path):
    frame = pan_frames(content_path)[0]
    warped = np.clip(frame + 0.2, 0, 1).astype(np.float32)
    everywhere = np.ones(frame.shape[:2], np.float32)
    start = random_stylizer.transfer(frame, style_path, settings=TransferSettings(size=48, steps=0),
                                     prior=FramePrior(warped, everywhere, 1e4))
    np.testing.assert_allclose(start.image, warped, atol=1e-6)
    half = np.zeros(frame.shape[:2], np.float32)
    half[:, :24] = 1.0  # the flow is trusted on the left half only: the right half starts as an image does
    start = random_stylizer.transfer(frame, style_path, settings=TransferSettings(size=48, steps=0, init="content"),
                                     prior=FramePrior(warped, half, 1e4))
    np.testing.assert_allclose(start.image[:, :24], warped[:, :24], atol=1e-6)
    np.testing.assert_allclose(start.image[:, 24:], frame[:, 24:], atol=1e-6)
    # λ far above the default: the random network's style loss is out of all proportion to its content loss.
    free, held = (random_stylizer.transfer(frame, style_path, settings=SETTINGS,
                                           prior=FramePrior(warped, everywhere * trusted, 1e6))
                  for trusted in (0.0, 1.0))
    assert np.mean((held.image - warped) ** 2) < 0.2 * np.mean((free.image - warped) ** 2)
    with pytest.raises(StyleKerasError, match="must have the output's size"):
        random_stylizer.transfer(frame, style_path, settings=SETTINGS, prior=FramePrior(warped[:20], everywhere[:20], 1.0))


def test_a_frame_prior_works_tile_by_tile(random_stylizer, content_path, style_path):
    frame = load_image(content_path)
    warped = np.clip(frame + 0.1, 0, 1).astype(np.float32)
    settings = TransferSettings(size=64, steps=3, optimizer="adam", scales=1, tile=16, tile_margin=16)
    assert random_stylizer.tiling(settings).needed(64, 64)
    free, held = (random_stylizer.transfer(frame, style_path, settings=settings,
                                           prior=FramePrior(warped, np.full(frame.shape[:2], trusted, np.float32), 1e6))
                  for trusted in (0.0, 1.0))
    assert len(held.history["temporal"]) == 3
    assert np.mean((held.image - warped) ** 2) < 0.5 * np.mean((free.image - warped) ** 2)


def test_temporal_frames_flicker_less_than_independent_ones(random_stylizer, content_path, style_path):
    """Mechanics only (random weights): warping error of consecutive outputs, with and without the prior."""
    frames = pan_frames(content_path, 4)

    def warping_error(outputs):
        return np.mean([flow.warping_error(outputs[t - 1], outputs[t], flow.frame_motion(frames[t - 1], frames[t]))
                        for t in range(1, len(frames))])

    kwargs = dict(settings=replace_init(SETTINGS, "noise"))
    independent = [r.image for r in video.stylize_frames(random_stylizer, frames, style_path,
                                                         video=video.VideoSettings(temporal=False), **kwargs)]
    temporal = [r.image for r in video.stylize_frames(random_stylizer, frames, style_path, **kwargs)]
    assert warping_error(temporal) < warping_error(independent) / 3


def replace_init(settings, init):
    from dataclasses import replace

    return replace(settings, init=init)


def test_frame_settings_run_later_frames_in_one_scale_with_half_the_steps():
    settings = TransferSettings(size=512, steps=60, scales=2)
    later = video.VideoSettings().frame_settings(settings)
    assert (later.steps, later.scales, later.size) == (30, 1, 512)
    assert video.VideoSettings(frame_steps=7).frame_settings(settings).steps == 7
    assert video.VideoSettings(temporal=False).frame_settings(settings) == settings
    with pytest.raises(StyleKerasError, match="`temporal_weight` must be"):
        video.VideoSettings(temporal_weight=-1)


class StopAtFrame:
    """A per-frame callback factory that interrupts the run at the first step of frame `frame`."""

    def __init__(self, frame):
        self.frame = frame

    def __call__(self, index, frames):
        def callback(report):
            if index == self.frame:
                raise KeyboardInterrupt
        return callback


def test_transfer_video_resumes_after_the_last_finished_frame_as_if_never_stopped(
        tmp_path, clip_path, random_stylizer, style_path):
    run = dict(stylizer=random_stylizer, settings=SETTINGS)
    whole = video.transfer_video(clip_path, style_path, tmp_path / "whole.mp4", keep_frames=True, **run)
    assert (whole.frames, whole.stylized, whole.stop_reason) == (5, 5, None)
    assert streams(whole.output)[:2] == (5, 12) and streams(whole.output)[2]  # audio kept

    output = tmp_path / "out.mp4"
    stopped = video.transfer_video(clip_path, style_path, output, callback=StopAtFrame(3), **run)
    assert stopped.output is None and stopped.stylized == 3 and "frame 4 of 5: interrupted" in stopped.stop_reason
    folder = video.frames_folder(output)
    assert sorted(path.name for path in folder.iterdir()) == [f"frame_{i:06d}.png" for i in range(3)]
    assert not output.exists()
    with pytest.raises(StyleKerasError, match="holds the frames of an earlier run; add `resume=True`"):
        video.transfer_video(clip_path, style_path, output, **run)

    resumed = video.transfer_video(clip_path, style_path, output, resume=True, keep_frames=True, **run)
    assert (resumed.frames, resumed.stylized) == (5, 2)
    for index in range(5):
        name = f"frame_{index:06d}.png"
        np.testing.assert_array_equal(load_image(folder / name), load_image(video.frames_folder(whole.output) / name))
    report = read_report(folder / "frame_000004.png")
    assert report["inputs"]["frame"] == 4 and report["settings"]["steps"] == 3 and report["video"]["temporal"]
    assert report["final_losses"]["temporal"] > 0

    # Frames made with other settings are not continued, nor overwritten.
    before = {path: path.read_bytes() for path in folder.iterdir()}
    with pytest.raises(StyleKerasError, match="were made from another clip, style, model or settings"):
        video.transfer_video(clip_path, style_path, output, resume=True, video=video.VideoSettings(temporal_weight=5.0),
                             **run)
    assert {path: path.read_bytes() for path in folder.iterdir()} == before
