"""What `stylekeras transfer` runs once its options are checked: one photo, or each photo of a folder,
with the progress bar, reports, checkpoints and the extras asked for (`stylekeras.cli` parses the options)."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Optional, Protocol

import numpy as np
import typer

from stylekeras import batch as batch_module
from stylekeras import stylize
from stylekeras.callbacks import ProgressBar, ProgressPictures, SaveEvery, TensorBoardLogger
from stylekeras.flags import spell_flags
from stylekeras.image_io import load_image, save_image
from stylekeras.report import report_matches, run_report, write_report_json


class Interrupts(Protocol):
    """How a job is stopped: by the command's signals (`cli._Interrupts`), or only from outside (a Ray worker)."""

    deferred: bool  # set once optimization starts: a first signal then stops at the end of the step

    def check(self, report: object) -> None:
        """Raise KeyboardInterrupt if a stop was asked for (a step callback, and a hook within a step)."""

    def held(self) -> contextlib.AbstractContextManager[None]:
        """While results are written, a signal waits."""


class TransferJob:
    """What `transfer` runs once it has checked its inputs: one photo, or each photo of a folder."""

    def __init__(self, *, stylizer: stylize.Stylizer, settings: stylize.TransferSettings, style_pixels: list[np.ndarray],
                 masks: list[np.ndarray] | None, options: dict, interrupts: Interrupts, quiet: bool,
                 save_every: int, max_pixels: int | None, checkpoint_every: int, resume: bool,
                 logdir: Path | None, progress_gif: Path | None, contact_sheet: Path | None, style_paths: list[str],
                 json_summary: bool, flags: Mapping[str, str], init_pixels: np.ndarray | None = None,
                 init_path: str | None = None) -> None:
        self.stylizer, self.settings, self.style_pixels, self.masks = stylizer, settings, style_pixels, masks
        self.init_pixels, self.init_path = init_pixels, init_path  # `--init-image`: every photo's start
        self.options, self.interrupts, self.quiet, self.save_every = options, interrupts, quiet, save_every
        self.max_pixels, self.checkpoint_every, self.resume = max_pixels, checkpoint_every, resume
        self.logdir, self.progress_gif, self.contact_sheet = logdir, progress_gif, contact_sheet
        self.style_paths = style_paths
        self.flags = flags  # how the library's parameter names read on this command line (`stylekeras.flags`)
        self.json_summary = json_summary  # then stdout carries only the JSON; the "wrote" line goes to stderr

    def run_photos(self, contents: list[Path], outputs: list[Path], report_path: Optional[Path], in_batch: bool = False,
                   progress: ProgressBar | None = None, resume: Optional[bool] = None,
                   sources: Optional[list[str]] = None) -> list[dict]:
        """Stylize one photo, or several of one size together, and write each image (with its report) and
        the extras asked for.

        In a batch the extras get one file per photo, and `progress` is the shared bar (None when quiet).
        `resume` overrides the job's own (`--resume`), for a photo run again after its worker died;
        `sources` are the photos' names in the reports when they differ from `contents` (a URL's local copy)."""
        per_photo = (lambda path, content: _beside(path, content)) if in_batch else (lambda path, content: path)
        pixels = [load_image(content, label="content image", max_pixels=self.max_pixels) for content in contents]
        total_steps = sum(self.settings.scale_steps(max(pixels[0].shape[:2])))
        checkpoints = [checkpoint_for(output) for output in outputs]
        # In a batch, photos without a checkpoint (not reached before the interruption) start afresh.
        resume = (self.resume if resume is None else resume) and (not in_batch or all(checkpoint.exists() for checkpoint in checkpoints))
        pictures = [ProgressPictures(self.save_every or max(1, total_steps // 20)) for _ in contents]
        with contextlib.ExitStack() as stack:
            callbacks = [[SaveEvery(output, self.save_every)] for output in outputs]
            for content, photo_callbacks, photo_pictures in zip(contents, callbacks, pictures):
                if self.progress_gif or self.contact_sheet:
                    photo_callbacks.append(photo_pictures)
                if self.logdir:
                    logger = TensorBoardLogger(self.logdir / content.stem if in_batch else self.logdir,
                                               {**self.options, **dataclasses.asdict(self.settings)}, self.save_every or 50)
                    stack.callback(logger.close)
                    photo_callbacks.append(logger)
            callbacks[-1].append(self.interrupts.check)  # after every photo's snapshots of the step
            within_step_hooks = [self.interrupts.check]
            if not self.quiet:
                bar = progress or stack.enter_context(ProgressBar(total_steps))
                bar.start_image(" + ".join(content.name for content in contents), len(contents))
                callbacks[0].insert(0, bar)  # the first photo's losses stand for the group's
                within_step_hooks.insert(0, bar.within_step)
            self.interrupts.deferred = True
            results = self.stylizer.transfer_batch(
                pixels, self.style_pixels, style_masks=self.masks, init_image=self.init_pixels,
                checkpoints=checkpoints, checkpoint_every=self.checkpoint_every, resume=resume,
                callbacks=[lambda step, photo_callbacks=photo_callbacks: [callback(step) for callback in photo_callbacks]
                           for photo_callbacks in callbacks],
                within_step=lambda fraction: [hook(fraction) for hook in within_step_hooks], settings=self.settings,
            )
        summaries = []
        for content, source, output, checkpoint, content_pixels, photo_pictures, result in zip(
                contents, sources or contents, outputs, checkpoints, pixels, pictures, results):
            inputs = self._inputs(source)
            run = run_report(result, self.stylizer.description, inputs, command_line={**self.options, **inputs})
            with self.interrupts.held():
                written = _write_result(result, output, checkpoint, run, self.flags)
                if report_path:
                    write_report_json(per_photo(report_path, content), run, result.history)
                if self.progress_gif and photo_pictures.frames:
                    photo_pictures.write_gif(per_photo(self.progress_gif, content))
                if self.contact_sheet:
                    photo_pictures.write_contact_sheet(per_photo(self.contact_sheet, content), content_pixels,
                                                       self.style_pixels)
            if not self.quiet and result.stop_reason is None:
                height, width = result.image.shape[:2]
                device = result.device.rsplit("device:", 1)[-1]
                together = f", {len(contents)} photos together" if len(contents) > 1 else ""
                steps = f"{result.steps_done} step{'' if result.steps_done == 1 else 's'}"
                typer.secho(f"wrote {written} ({width}×{height}, {steps} in {result.seconds:.0f} s "
                            f"on {device}{together})", fg="green", err=self.json_summary)
            summaries.append({**run, "output": str(written)})
        return summaries

    def is_done(self, source: Path | str, output: Path) -> bool:
        """Whether `output` is this job's finished result for the photo `source` (its name in reports): its
        embedded report has the same settings, model and inputs, and no early stop."""
        return report_matches(output, {"settings": dataclasses.asdict(self.settings), "model": self.stylizer.description,
                                       "inputs": self._inputs(source), "stop_reason": None})

    def _inputs(self, source: Path | str) -> dict:
        init = {"init_image": self.init_path} if self.init_path else {}
        return {"content": str(source), "styles": self.style_paths, **init}

    def run_batch(self, contents: list[Path], folder: Path, report_path: Optional[Path], skip_existing: bool,
                  batch_size: int) -> dict:
        """The photos in groups of up to `batch_size` of one size (see `stylekeras.batch.run_batch`), with a
        bar for the photos."""
        bar = ProgressBar(images=len(contents)) if not self.quiet else contextlib.nullcontext()
        with bar as progress:

            def stylize_group(group: list[Path], outputs: list[Path]) -> list[tuple[str, Optional[str]]]:
                results = self.run_photos(group, outputs, report_path, True, progress)
                return [(result["output"], result["stop_reason"]) for result in results]

            def passed(content: Path, error: Optional[str]) -> None:
                if error:
                    typer.secho(f"error: {spell_flags(str(error), self.flags)}; skipped", fg="red", err=True)
                if progress:
                    progress.count_image()

            style = Path(self.style_paths[0])
            summary = batch_module.run_batch(
                contents, folder, style, stylize_group, skip_existing, passed, batch_size,
                lambda content: group_key(content, folder, style, self.settings, self.max_pixels, self.resume))
        if not self.quiet:
            typer.echo(batch_line(summary, folder), err=True)
        return dataclasses.asdict(summary)


def group_key(content: Path, folder: Path, style: Path, settings: stylize.TransferSettings, max_pixels: int,
              resume: bool) -> tuple:
    """Photos with equal keys can be stylized together: their size at every scale, and a photo resumed from
    its own checkpoint alone (it is at another step than the rest)."""
    shape = load_image(content, label=f"content image '{content}'", max_pixels=max_pixels).shape
    checkpoint = checkpoint_for(batch_module.output_for(content, folder, style))
    return stylize.scale_shapes(shape, settings), resume and checkpoint.exists() and content


def batch_line(summary: batch_module.BatchSummary, folder: Path) -> str:
    """The status line that ends a batch."""
    retried = f", {len(summary.retried)} run again after their worker died" if summary.retried else ""
    return (f"batch: {len(summary.written)} written, {len(summary.skipped)} skipped, {len(summary.failed)} failed"
            f"{retried} → {folder}")


def exit_if_stopped(summary: dict, interrupted_exit_code: int) -> None:
    """Exit with `interrupted_exit_code` (130 or 143, by the signal) after an interruption, 1 after a failed
    step or a failed photo in a batch."""
    stop_reason = summary.get("stop_reason")
    if stop_reason:
        raise typer.Exit(interrupted_exit_code if stop_reason.startswith("interrupted") else 1)
    if summary.get("failed"):
        raise typer.Exit(1)


def checkpoint_for(output: Path) -> Path:
    """Where the checkpoint of the run writing `output` goes: beside it, OUTPUT_STEM.checkpoint.npz."""
    return output.with_name(f"{output.stem}.checkpoint.npz")


def _beside(path: Path, content: Path) -> Path:
    """In a batch, one file per photo: PATH_STEM_<photo stem>.SUFFIX."""
    return path.with_name(f"{path.stem}_{content.stem}{path.suffix}")


def _write_result(result: stylize.StyleResult, output: Path, checkpoint: Path, report: dict, flags: dict[str, str]) -> Path:
    """Write the image; after an abnormal stop, keep any existing output and write beside it instead."""
    if result.checkpoint_error:
        typer.secho(f"warning: {result.checkpoint_error}", fg="yellow", err=True)
    if result.stop_reason and output.exists():
        output = output.with_name(f"{output.stem}_partial{output.suffix}")
    save_image(result.image, output, report)
    if result.stop_reason:
        resumable = f"; continue with --resume (checkpoint {checkpoint})" if checkpoint.exists() else ""
        label = "stopped" if result.stop_reason.startswith("interrupted") else "error"
        typer.secho(f"{label}: {spell_flags(result.stop_reason, flags)}; wrote {output}{resumable}", fg="yellow", err=True)
    return output
