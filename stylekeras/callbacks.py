"""Per-step callbacks for `Stylizer.transfer`: a progress bar and periodic snapshots."""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from stylekeras.image_io import save_image
from stylekeras.stylize import StepReport


class ProgressBar:
    """A progress bar on stderr with the step, the loss parts and the time left; use as a context manager."""

    def __init__(self, steps: int, description: str = "stylizing") -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TextColumn("{task.fields[losses]}"),
            TimeElapsedColumn(),
            TextColumn("eta", style="progress.remaining"),
            TimeRemainingColumn(),
            console=_console(),
        )
        self.task = self.progress.add_task(description, total=steps, losses="")

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc_info) -> None:
        if self.progress.live.is_started:
            self.progress.stop()

    def __call__(self, report: StepReport) -> None:
        # Started by the first step, so errors found while preparing the run are not drawn over a bar.
        if not self.progress.live.is_started:
            self.progress.start()
        losses = report.losses
        text = f"loss {losses['total']:.3g} | content {losses['content']:.3g} style {losses['style']:.3g} tv {losses['tv']:.3g}"
        self.progress.update(self.task, completed=report.step, losses=text)


def _console() -> Console:
    console = Console(file=sys.stderr)
    # Logs and pipes get the final state once; give it room rather than rich's 80 columns.
    return console if console.is_terminal else Console(file=sys.stderr, width=140)


class SaveEvery:
    """Save the image every `every` steps next to `output`, as `<stem>_<step><suffix>`."""

    def __init__(self, output: str | Path, every: int) -> None:
        self.output = Path(output)
        self.every = every
        self.saved: list[Path] = []

    def path_for(self, step: int) -> Path:
        return self.output.with_name(f"{self.output.stem}_{step:04d}{self.output.suffix}")

    def __call__(self, report: StepReport) -> None:
        if self.every > 0 and report.step % self.every == 0 and report.step < report.steps:
            self.saved.append(save_image(report.image, self.path_for(report.step)))
