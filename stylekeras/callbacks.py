"""Per-step callbacks for `Stylizer.transfer`: progress bar, snapshots, TensorBoard, progress pictures."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from tensorflow.core.framework import summary_pb2

from stylekeras.atomic import atomic_write
from stylekeras.errors import StyleKerasError
from stylekeras.image_io import save_image, to_uint8
from stylekeras.stylize import StepReport


class ProgressBar:
    """A progress bar on stderr with the step, the loss parts and the time left; use as a context manager.

    With `images`, a second bar counts the photos of a batch (or the frames of a video: `unit`);
    `start_image` begins each photo's steps. The step total is the run's own (`StepReport.steps`) from the
    first step on; `steps` is shown before it. The bar fills, and the time left follows, the run's work
    (`StepReport.work_done`) rather than its steps: a step at 512 px takes four times one at 256 px. A
    tiled step (`within_step`) moves it by its share of the step's work as the tiles are done.
    """

    def __init__(self, steps: int | None = None, description: str = "stylizing", images: int | None = None,
                 unit: str = "photos") -> None:
        self.progress = _progress()
        self.images = self.progress.add_task(unit, total=images, text="", count=_count(0, images)) if images else None
        self.task = self.progress.add_task(description, total=1.0, text="", count=_count(0, steps))
        self.started_images = 0
        self.images_total, self.steps = images, steps
        # Before a run's first step reports, a tiled first step moves the bar by its share: the last run's,
        # or one of `steps`.
        self.first_step_work = 1.0 / steps if steps else 0.0
        self.work_done, self.next_step_work = 0.0, self.first_step_work

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc_info) -> None:
        if self.progress.live.is_started:
            self.progress.stop()

    def start_image(self, name: str, count: int = 1, of: int | None = None, position: int | None = None) -> None:
        """A new photo of a batch (or `count` photos stylized together): the step bar starts again (the
        photo bar counts the finished ones, `of` them when the total was not known at the start, and
        `position` of them when some were done by an earlier run)."""
        if position is not None:
            self.started_images = position
        if self.images is not None:
            self._count_images(of)
            self.progress.reset(self.task, description=name, text="", count=_count(0, self.steps))
            self.started_images += count
        self.work_done, self.next_step_work = 0.0, self.first_step_work

    def count_image(self) -> None:
        """A photo of a batch that was skipped or failed before its first step."""
        self.started_images += 1
        if self.images is not None:
            self._count_images()

    def __call__(self, report: StepReport) -> None:
        # Started by the first step, so errors found while preparing the run are not drawn over a bar.
        if not self.progress.live.is_started:
            self.progress.start()
        losses = report.losses
        text = f"loss {losses['total']:.3g} | content {losses['content']:.3g} style {losses['style']:.3g} tv {losses['tv']:.3g}"
        if "temporal" in losses:  # a video frame's
            text += f" temporal {losses['temporal']:.3g}"
        self.progress.update(self.task, completed=report.work_done, text=text, count=_count(report.step, report.steps))
        self.work_done, self.next_step_work = report.work_done, report.next_step_work
        if report.step == 1:
            self.first_step_work = report.work_done
        if self.images is not None and report.step == report.steps:
            self._count_images()

    def within_step(self, fraction: float) -> None:
        """Move the bar within a long (tiled) step; pass as `Stylizer.transfer(within_step=…)`."""
        if not self.progress.live.is_started:
            self.progress.start()
        self.progress.update(self.task, completed=self.work_done + fraction * self.next_step_work)

    def _count_images(self, total: int | None = None) -> None:
        self.images_total = total or self.images_total
        self.progress.update(self.images, completed=self.started_images, total=self.images_total,
                             count=_count(self.started_images, self.images_total))


class PhotosBar:
    """A bar of the photos a cluster has finished (written, skipped or failed), with the failures, the
    photos run again and the time left; use as a context manager."""

    def __init__(self, photos: int) -> None:
        self.progress = _progress()
        self.task = self.progress.add_task("photos", total=photos, text="", count=_count(0, photos))
        self.photos = photos
        self.failed = self.retried = self.finished = 0

    def __enter__(self) -> PhotosBar:
        self.progress.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.progress.stop()

    def advance(self, photos: int = 1, failed: int = 0, retried: int = 0) -> None:
        """`photos` more finished (`failed` of them failed); `retried` more started again."""
        self.failed += failed
        self.retried += retried
        self.finished += photos
        counts = ", ".join(f"{count} {label}" for count, label in ((self.failed, "failed"), (self.retried, "retried"))
                           if count)
        self.progress.update(self.task, advance=photos, text=counts, count=_count(self.finished, self.photos))


def _count(done: int, total: int | None) -> str:
    """A bar's count: done of total ("?" while the total is not known)."""
    return f"{done}/{'?' if total is None else total}"


def _progress() -> Progress:
    """Rich bars: the task's description, the bar, its `count` field (done of total), its `text` field, time
    taken and left."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(bar_width=24),
        TextColumn("{task.fields[count]}", style="progress.download"),
        TextColumn("{task.fields[text]}"),
        TimeElapsedColumn(),
        TextColumn("eta", style="progress.remaining"),
        TimeRemainingColumn(),
        console=_console(),
    )


def _console() -> Console:
    console = Console(file=sys.stderr)
    # Logs and pipes get the final state once; give it room rather than rich's 80 columns.
    return console if console.is_terminal else Console(file=sys.stderr, width=140)


class SaveEvery:
    """Save the image every `every` steps next to `output`, as `<stem>_<step><suffix>`."""

    def __init__(self, output: str | Path, every: int) -> None:
        self.output = Path(output)
        self.every = every

    def path_for(self, step: int) -> Path:
        return self.output.with_name(f"{self.output.stem}_{step:04d}{self.output.suffix}")

    def __call__(self, report: StepReport) -> None:
        if self.every > 0 and report.step % self.every == 0 and report.step < report.steps:
            save_image(report.image, self.path_for(report.step))


class TensorBoardLogger:
    """Per-step scalars (total, content, style and each style layer, tv), the image every `image_every`
    steps and the run's settings as text, in a TensorBoard log directory.

    With the tensorboard package (`pip install "stylekeras[tensorboard]"`) the logs are written by
    `tf.summary.scalar/image/text`; TensorFlow no longer installs it, so without it they are written with
    `tf.summary.write` and the TensorBoard plugins' metadata — the same records those helpers write.
    """

    def __init__(self, logdir: str | Path, settings: dict, image_every: int = 50) -> None:
        self.writer = tf.summary.create_file_writer(str(logdir))
        self.image_every = image_every
        self.helpers = tensorboard_installed()
        text = "```\n" + json.dumps(settings, indent=2, default=str) + "\n```"
        with self.writer.as_default(step=0):
            if self.helpers:
                tf.summary.text("settings", text)
            else:
                tf.summary.write("settings", tf.constant(text), metadata=_plugin("text"))

    def __call__(self, report: StepReport) -> None:
        with self.writer.as_default(step=report.step):
            for name, value in report.losses.items():
                if self.helpers:
                    tf.summary.scalar(f"loss/{name}", value)
                else:
                    tf.summary.write(f"loss/{name}", tf.constant(value, tf.float32), metadata=_plugin("scalars"))
            if self.image_every and (report.step % self.image_every == 0 or report.step == report.steps):
                self._image(np.asarray(report.image))

    def _image(self, image: np.ndarray) -> None:
        if self.helpers:
            tf.summary.image("image", image[None], max_outputs=1)
            return
        png = tf.io.encode_png(tf.image.convert_image_dtype(image, tf.uint8, saturate=True))
        # The images plugin's format: [width, height, encoded image, …] as strings.
        tf.summary.write("image", tf.stack([tf.as_string(image.shape[1]), tf.as_string(image.shape[0]), png]),
                         metadata=_plugin("images"))

    def close(self) -> None:
        self.writer.close()


def tensorboard_installed() -> bool:
    """Whether the tensorboard package, which provides `tf.summary.scalar/image/text`, is importable."""
    return importlib.util.find_spec("tensorboard") is not None


def _plugin(name: str) -> bytes:
    metadata = summary_pb2.SummaryMetadata()
    metadata.plugin_data.plugin_name = name
    return metadata.SerializeToString()


class ProgressPictures:
    """Keeps a small copy of the image every `every` steps, for an animated GIF or a contact sheet."""

    def __init__(self, every: int, height: int = 256) -> None:
        self.every = max(1, every)
        self.height = height
        self.frames: list[tuple[int, np.ndarray]] = []

    def __call__(self, report: StepReport) -> None:
        if report.step % self.every == 0 or report.step == report.steps:
            self.frames.append((report.step, _thumbnail(np.asarray(report.image), self.height)))

    def write_gif(self, path: str | Path, seconds_per_frame: float = 0.15) -> Path:
        """The optimization as an animation (the last frame held longer), written atomically."""
        if not self.frames:
            raise StyleKerasError("`progress_gif`: no steps were run, so there is nothing to animate")
        size = self.frames[-1][1].shape[1::-1]
        frames = [Image.fromarray(to_uint8(frame)).resize(size) for _, frame in self.frames]
        durations = [int(seconds_per_frame * 1000)] * (len(frames) - 1) + [2000]
        with atomic_write(path) as stream:
            frames[0].save(stream, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0)
        return Path(path)

    def write_contact_sheet(self, path: str | Path, content: np.ndarray, styles: list[np.ndarray]) -> Path:
        """Content, style(s) and the snapshots side by side, one row, with a gap between pictures."""
        panels = [_thumbnail(content, self.height)] + [_thumbnail(style, self.height) for style in styles]
        panels += [frame for _, frame in self.frames]
        gap = np.ones((self.height, 6, 3), np.float32)
        row = [piece for panel in panels for piece in (panel, gap)][:-1]
        return save_image(np.concatenate(row, axis=1), path)


def _thumbnail(pixels: np.ndarray, height: int) -> np.ndarray:
    scale = height / pixels.shape[0]
    width = max(1, round(pixels.shape[1] * scale))
    return np.clip(tf.image.resize(pixels, (height, width), antialias=True).numpy(), 0.0, 1.0)
