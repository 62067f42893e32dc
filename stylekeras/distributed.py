"""Many photos on many machines: a folder stylized by a pool of Ray actors, on this machine or a cluster.

Each actor (`StylizeWorker`) builds its `Stylizer` once, keeps its style-target cache, and stylizes a photo
(or `batch_size` photos of one size) exactly as a local batch does (`TransferJob.run_photos`): the same
checkpoints beside the outputs and the same atomic writes, the run report embedded in each image. The
driver (`run_folder`) hands out the photos; when a worker dies (SIGKILL, out of memory, a lost node) Ray
restarts it and the driver gives its photos to the next free worker, which resumes them from their
checkpoints. A photo whose output already exists with a report of the same settings, model and inputs is
skipped, so running the command again finishes a stopped job and does nothing twice.

Photos and outputs are paths every worker reaches under the same name (any path on one machine, a shared
filesystem on a cluster) or folder URLs (`stylekeras.storage`), which a worker copies to a scratch folder
and back. Ray is an optional dependency: `pip install "stylekeras[ray]"`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import posixpath
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

from stylekeras import batch as batch_module
from stylekeras import storage
from stylekeras.atomic import remove_leftovers
from stylekeras.callbacks import PhotosBar
from stylekeras.errors import StyleKerasError
from stylekeras.jobs import TransferJob, checkpoint_for, group_key
from stylekeras.native import quiet_native_stderr

if TYPE_CHECKING:
    from stylekeras.stylize import TransferSettings

RAY_MISSING = "Ray is not installed; to run on Ray: pip install \"stylekeras[ray]\""


def check_ray_installed(option: str = "`ray`") -> None:
    """Fail in one line, before any work, when Ray is missing."""
    if importlib.util.find_spec("ray") is None:
        raise StyleKerasError(f"{option}: {RAY_MISSING}")


@dataclass(frozen=True)
class ClusterSettings:
    """Where a run goes and how wide.

    `address`: "local" starts Ray on this machine for the run and stops it after; "auto" joins the cluster
    this machine belongs to (`ray start`); "HOST:PORT" or "ray://HOST:PORT" a given cluster.
    `workers_per_node` actors run on each node and share its CPUs (TensorFlow in each uses its share, so a
    worker's images equal a local run's with as many threads); `gpus_per_worker` GPUs each (a fraction
    shares a GPU; nodes without enough GPUs get fewer workers). A photo whose worker dies is started again
    until it has had `attempts` tries.
    """

    address: str = "local"
    workers_per_node: int = 1
    gpus_per_worker: float = 0.0
    attempts: int = 3

    def __post_init__(self) -> None:
        if not self.address:
            raise StyleKerasError("`address` is empty; give local, auto, HOST:PORT or ray://HOST:PORT")
        if self.workers_per_node < 1:
            raise StyleKerasError(f"`workers_per_node={self.workers_per_node}` must be at least 1")
        if self.gpus_per_worker < 0:
            raise StyleKerasError(f"`gpus_per_worker={self.gpus_per_worker:g}` must not be negative")
        if self.attempts < 1:
            raise StyleKerasError(f"`attempts={self.attempts}` must be at least 1")


@dataclass(frozen=True)
class WorkerRecipe:
    """What every worker builds: `Stylizer(**stylizer_options)` and `TransferJob(**job_options)` (all but
    the stylizer, the interrupts and the quiet flag), and where per-photo JSON reports go (None: none)."""

    stylizer_options: dict[str, Any]
    job_options: dict[str, Any]
    report_path: Optional[Path] = None


@dataclass(frozen=True)
class PhotoOutcome:
    """What a worker did with one photo: written (`output`), skipped (already done) or failed (`error`);
    `stop_reason` when it stopped early (then `output` holds the image so far); `resumed_from` the steps
    its checkpoint had done."""

    content: str
    output: Optional[str] = None
    skipped: bool = False
    error: Optional[str] = None
    stop_reason: Optional[str] = None
    resumed_from: int = 0


class _Uninterrupted:
    """A worker is stopped by Ray, never by a signal of its own; its checkpoints make that safe."""

    deferred = False

    def check(self, report) -> None:
        pass

    def held(self):
        return contextlib.nullcontext()


class StylizeWorker:
    """One Ray actor: a built `Stylizer` and a quiet `TransferJob` that stylize the photos it is given."""

    def __init__(self, recipe: WorkerRecipe) -> None:
        from stylekeras.stylize import Stylizer

        self.report_path = recipe.report_path
        self.job = self.error = None
        try:  # reported by `describe`: an actor whose construction raises would be restarted in a loop
            stylizer = Stylizer(**recipe.stylizer_options)
            self.job = TransferJob(stylizer=stylizer, interrupts=_Uninterrupted(), quiet=True, json_summary=False,
                                   **recipe.job_options)
        except StyleKerasError as error:
            self.error = str(error)

    def describe(self) -> dict[str, Any]:
        """The network this worker built, or the error that stopped it."""
        if self.error:
            return {"error": self.error}
        return {"weights": self.job.stylizer.weights.description, "precision": self.job.stylizer.precision}

    def stylize(self, contents: list[str], outputs: list[str], resume: bool) -> list[PhotoOutcome]:
        """Stylize the photos (one, or several of one size together) into `outputs`, skipping those already
        done; `resume` continues from the checkpoints beside the outputs where they exist. Photos and
        outputs at URLs are copied to a scratch folder and back, checkpoints uploaded as they are written."""
        with tempfile.TemporaryDirectory(prefix="stylekeras-") as scratch:
            try:
                local_contents = [_local_copy(content, Path(scratch) / "in", required=True) for content in contents]
                local_outputs = [_local_copy(output, Path(scratch) / "out") for output in outputs]
                mirrored = {checkpoint_for(local_output): storage.join(posixpath.dirname(output), checkpoint_for(local_output).name)
                            for output, local_output in zip(outputs, local_outputs) if storage.is_url(output)}
                for checkpoint, url in mirrored.items():
                    if resume:
                        _local_copy(url, checkpoint.parent)
                if resume:  # the run being resumed may have been killed mid-write: its temporaries stay behind
                    for output in local_outputs:
                        remove_leftovers(output)
                        remove_leftovers(checkpoint_for(output))
            except StyleKerasError as error:
                return [PhotoOutcome(content, error=str(error)) for content in contents]
            done = [self.job.is_done(content, output) for content, output in zip(contents, local_outputs)]
            outcomes = {content: PhotoOutcome(content, output, skipped=True)
                        for content, output, skip in zip(contents, outputs, done) if skip}
            todo = [index for index, skip in enumerate(done) if not skip]
            if todo:
                try:
                    with _CheckpointUploads(mirrored):
                        summaries = self.job.run_photos(
                            [local_contents[index] for index in todo], [local_outputs[index] for index in todo],
                            self.report_path, in_batch=True, resume=resume, sources=[contents[index] for index in todo])
                    for index, summary in zip(todo, summaries):
                        outcomes[contents[index]] = PhotoOutcome(
                            contents[index], _publish(Path(summary["output"]), outputs[index]),
                            stop_reason=summary["stop_reason"], resumed_from=summary["resumed_from"])
                except StyleKerasError as error:
                    outcomes.update({contents[index]: PhotoOutcome(contents[index], error=str(error)) for index in todo})
        return [outcomes[content] for content in contents]


def _local_copy(location: str, folder: Path, required: bool = False) -> Path:
    """A path for `location`: itself when it is a path; for a URL FOLDER/<its name>, downloaded if it
    exists (it must when `required`)."""
    if not storage.is_url(location):
        return storage.local(location)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / storage.name_of(location)
    if required or storage.exists(location):
        storage.download(location, target)
    return target


def _publish(written: Path, output: str) -> str:
    """Upload what a worker wrote for a URL `output` (the output itself, or OUTPUT_partial beside it)."""
    if not storage.is_url(output):
        return str(written)
    url = storage.join(posixpath.dirname(output), written.name)
    storage.upload(written, url)
    return url


class _CheckpointUploads:
    """While a run goes on, upload each of its local checkpoints to its URL whenever it is rewritten, and
    remove the URL's copy once the run has deleted it (finished); a last pass when the run ends."""

    INTERVAL = 0.5  # seconds between looks

    def __init__(self, mirrored: dict[Path, str]) -> None:
        self.mirrored = mirrored
        self.seen = {checkpoint: _written_at(checkpoint) for checkpoint in mirrored}  # a resumed one is there

    def __enter__(self) -> _CheckpointUploads:
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        if self.mirrored:
            self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        if self.mirrored:
            self.stop.set()
            self.thread.join()
            self._sync(last=True)

    def _watch(self) -> None:
        while not self.stop.wait(self.INTERVAL):
            try:
                self._sync()
            except StyleKerasError:
                pass  # the next look tries again; the last pass, on leaving, raises

    def _sync(self, last: bool = False) -> None:
        """Upload what changed; remove a URL's copy whose local file is gone (on the last pass always: a
        run may write and delete its checkpoint between two looks)."""
        for checkpoint, url in self.mirrored.items():
            written = _written_at(checkpoint)
            if written is None and (last or self.seen[checkpoint] is not None):
                storage.remove(url)
            elif written is not None and written != self.seen[checkpoint]:
                storage.upload(checkpoint, url)
            self.seen[checkpoint] = written


def _written_at(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return None


def run_folder(
    contents: list[Path] | list[str],
    folder: Path | str,
    recipe: WorkerRecipe,
    cluster: ClusterSettings,
    *,
    batch_size: int = 1,
    skip_existing: bool = False,
    quiet: bool = False,
) -> batch_module.BatchSummary:
    """Stylize `contents` into `folder` (as `batch.output_for` names them) on Ray; the summary is a local
    batch's, plus the photos started again after their worker died. Photos and folder may be URLs
    (`stylekeras.storage`); photos at URLs run one per task (`batch_size` 1).

    Photos are grouped as a local batch groups them (`batch.plan_batch`); the first group to stop early
    (a non-finite loss) stops new work, and Ctrl-C stops at once, both leaving checkpoints to resume from.
    Status lines and the bar go to stderr unless `quiet`.
    """
    check_ray_installed()
    import ray

    if batch_size > 1 and any(storage.is_url(content) for content in contents):
        raise StyleKerasError(f"`batch_size={batch_size}`: photos at URLs are stylized one at a time (grouping "
                              "them by size would download each first); use batch_size=1")
    style = Path(recipe.job_options["style_paths"][0])
    settings, max_pixels = recipe.job_options["settings"], recipe.job_options["max_pixels"]
    resume = recipe.job_options["resume"]
    summary, groups = batch_module.plan_batch(
        contents, folder, style, skip_existing, batch_size=batch_size,
        batch_key=lambda content: group_key(content, folder, style, settings, max_pixels, resume))
    if not groups:
        return summary
    started_here = not ray.is_initialized()
    if started_here:
        _connect(ray, cluster.address)
    workers = []
    try:
        workers, placement = _start_workers(ray, cluster, recipe)
        try:
            descriptions = ray.get([worker.describe.remote() for worker in workers])
        except ray.exceptions.RayError as error:  # e.g. stylekeras missing on a node
            raise StyleKerasError(f"a Ray worker could not start ({_first_line(error)})") from None
        errors = [description["error"] for description in descriptions if "error" in description]
        if errors:
            raise StyleKerasError(errors[0])
        if not quiet:
            typer.echo(f"ray: {placement}", err=True)
            typer.echo(f"weights: {descriptions[0]['weights']}; precision: {descriptions[0]['precision']}", err=True)
        bar = PhotosBar(len(contents)) if not quiet else None
        with bar or contextlib.nullcontext():
            if bar:
                bar.advance(len(contents) - sum(map(len, groups)), failed=len(summary.failed))
            dispatcher = _Dispatcher(ray, workers, groups, folder, style, resume, cluster.attempts, bar)
            try:
                dispatcher.run()
            except KeyboardInterrupt:
                summary.stop_reason = "interrupted"
        for content in contents:  # in the photos' order, as a local batch lists them
            if str(content) in dispatcher.outcomes:
                _record(dispatcher.outcomes[str(content)], dispatcher.tries.get(str(content), 1), summary)
    finally:
        for worker in workers:
            ray.kill(worker, no_restart=True)
        if started_here:
            ray.shutdown()
    return summary


class _Dispatcher:
    """Keeps every live worker busy with the next group of photos until none is left or a photo stops early.

    A group whose worker dies goes back to the front of the queue, for the next free worker, until it has
    had `attempts` tries. The dead worker is restarted by Ray; it gets work again once it answers a probe.
    """

    PROBE_DELAY = 0.5  # seconds between probes of a restarting worker

    def __init__(self, ray, workers: list, groups: list[list[Path]], folder: Path, style: Path, resume: bool,
                 attempts: int, bar: Optional[PhotosBar]) -> None:
        self.ray, self.folder, self.style, self.resume, self.attempts, self.bar = ray, folder, style, resume, attempts, bar
        self.idle = list(workers)
        self.queue = deque((group, 1) for group in groups)
        self.running: dict[Any, tuple[Any, list[Path], int]] = {}  # a group's result: (worker, group, try)
        self.probes: dict[Any, Any] = {}  # a restarting worker's probe: worker
        self.to_probe: list[tuple[float, Any]] = []  # (when, worker)
        self.outcomes: dict[str, PhotoOutcome] = {}
        self.tries: dict[str, int] = {}

    def run(self) -> None:
        while self.running or (self.queue and not self._stopped() and (self.idle or self.probes or self.to_probe)):
            self._submit()
            pending = [*self.running, *self.probes]
            if not pending:  # only workers waiting for their next probe
                time.sleep(self.PROBE_DELAY)
                continue
            ready, _ = self.ray.wait(pending, num_returns=1, timeout=self.PROBE_DELAY if self.to_probe else None)
            for reference in ready:
                if reference in self.probes:
                    self._probed(reference)
                else:
                    self._finished(reference)
        for group, _ in self.queue:  # left when every worker is gone for good
            for content in group:
                self.outcomes[str(content)] = PhotoOutcome(str(content), error="no Ray worker is left to run it")

    def _stopped(self) -> bool:
        return any(outcome.stop_reason for outcome in self.outcomes.values())

    def _submit(self) -> None:
        now = time.monotonic()
        for when, worker in [entry for entry in self.to_probe if entry[0] <= now]:
            self.to_probe.remove((when, worker))
            self.probes[worker.describe.remote()] = worker
        while self.idle and self.queue and not self._stopped():
            group, attempt = self.queue.popleft()
            worker = self.idle.pop(0)
            outputs = [str(batch_module.output_for(content, self.folder, self.style)) for content in group]
            reference = worker.stylize.remote([str(content) for content in group], outputs,
                                              self.resume or attempt > 1)
            self.running[reference] = (worker, group, attempt)

    def _probed(self, reference) -> None:
        worker = self.probes.pop(reference)
        try:
            self.ray.get(reference)
        except self.ray.exceptions.ActorDiedError:
            return  # gone for good (its node lost and no room elsewhere): no more work for it
        except self.ray.exceptions.RayActorError:
            self.to_probe.append((time.monotonic() + self.PROBE_DELAY, worker))
            return
        self.idle.append(worker)

    def _finished(self, reference) -> None:
        worker, group, attempt = self.running.pop(reference)
        try:
            results = self.ray.get(reference)
        except self.ray.exceptions.RayActorError as error:  # the worker died; Ray restarts it
            self.to_probe.append((time.monotonic() + self.PROBE_DELAY, worker))
            if attempt < self.attempts:
                self.tries.update({str(content): attempt + 1 for content in group})
                self.queue.appendleft((group, attempt + 1))
                if self.bar:
                    self.bar.advance(0, retried=len(group))
                return
            results = [PhotoOutcome(str(content), error=f"its worker died {attempt} times ({_first_line(error)})")
                       for content in group]
        except self.ray.exceptions.RayTaskError as error:  # an unexpected error, not a death: the worker goes on
            self.idle.append(worker)
            cause = _first_line(getattr(error, "cause", None) or error)
            results = [PhotoOutcome(str(content), error=f"failed on its worker ({cause})") for content in group]
        else:
            self.idle.append(worker)
        self._collect(results)

    def _collect(self, results: list[PhotoOutcome]) -> None:
        for outcome in results:
            if outcome.error:
                typer.secho(f"error: {outcome.error}; skipped", fg="red", err=True)
            self.outcomes[outcome.content] = outcome
        if self.bar:
            self.bar.advance(len(results), failed=sum(bool(outcome.error) for outcome in results))


def _record(outcome: PhotoOutcome, tries: int, summary: batch_module.BatchSummary) -> None:
    if tries > 1:
        summary.retried.append({"content": outcome.content, "tries": tries, "resumed_from": outcome.resumed_from})
    if outcome.error:
        summary.fail(outcome.content, outcome.error)
    elif outcome.skipped:
        summary.skipped.append(outcome.output)
    else:
        summary.written.append(outcome.output)
    if outcome.stop_reason and summary.stop_reason is None:
        summary.stop_reason = outcome.stop_reason


def _connect(ray, address: str) -> None:
    """Start Ray here ("local") or join a cluster; a cluster that cannot be reached is a one-line error."""
    options = {"include_dashboard": False, "logging_level": "ERROR", "log_to_driver": False}
    try:
        with quiet_native_stderr():  # Ray's C++ client prints a line a second while it retries
            ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise StyleKerasError(f"`address`: cannot reach a Ray cluster at '{address}' ({_first_line(error)})") from None


def _count(number: float, noun: str) -> str:
    return f"{number:g} {noun}{'' if number == 1 else 's'}"


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _start_workers(ray, cluster: ClusterSettings, recipe: WorkerRecipe) -> tuple[list, str]:
    """`cluster.workers_per_node` actors on every live node (fewer where GPUs are short), each with its
    share of the node's CPUs; soft placement, so a worker whose node is lost restarts elsewhere."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    actor = ray.remote(StylizeWorker)
    workers, nodes, cpu_shares = [], 0, set()
    for node in ray.nodes():
        resources = node.get("Resources", {})
        if not node.get("Alive") or not resources.get("CPU"):
            continue
        count = cluster.workers_per_node
        if cluster.gpus_per_worker:
            count = min(count, math.floor(resources.get("GPU", 0) / cluster.gpus_per_worker + 1e-9))
        if count < 1:
            continue
        cpus = resources["CPU"] / count
        threads = str(max(1, math.floor(cpus)))
        environment = {"TF_NUM_INTRAOP_THREADS": threads, "TF_NUM_INTEROP_THREADS": threads,
                       "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
        for _ in range(count):
            workers.append(actor.options(
                num_cpus=cpus, num_gpus=cluster.gpus_per_worker, max_restarts=-1,
                scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=True),
                runtime_env={"env_vars": environment},
            ).remote(recipe))
        nodes += 1
        cpu_shares.add(f"{cpus:g}")
    if not workers:
        wanted = f" with {cluster.gpus_per_worker:g} GPU each" if cluster.gpus_per_worker else ""
        raise StyleKerasError(f"`address`: the Ray cluster at '{cluster.address}' has no node for a worker{wanted}")
    gpus = f", {_count(cluster.gpus_per_worker, 'GPU')}" if cluster.gpus_per_worker else ""
    placement = (f"{_count(len(workers), 'worker')} on {_count(nodes, 'node')} "
                 f"({'/'.join(sorted(cpu_shares))} CPU{'s' if cpu_shares != {'1'} else ''}{gpus} each)")
    return workers, placement


def transfer_folder(
    photos: str | os.PathLike | list[str | os.PathLike],
    styles: str | os.PathLike | list[str | os.PathLike],
    output: str | os.PathLike,
    *,
    settings: TransferSettings | None = None,
    cluster: ClusterSettings | None = None,
    batch_size: int = 1,
    checkpoint_every: int = 50,
    resume: bool = False,
    skip_existing: bool = False,
    max_pixels: int | None = None,
    report: str | os.PathLike | None = None,
    quiet: bool = False,
    **stylizer_options,
) -> batch_module.BatchSummary:
    """Stylize a folder of photos (a folder, a glob pattern, a folder URL or a list of files or URLs) into
    the folder (or folder URL) `output` on Ray: `settings` is a `TransferSettings` (default: the defaults), `cluster` a `ClusterSettings`
    (default: Ray started on this machine), `stylizer_options` the `Stylizer` keywords (`weights`,
    `precision`, ...). Options not named here take their defaults.

    >>> summary = transfer_folder("photos/", "starry_night.jpg", "stylized/", cluster=ClusterSettings("auto"))
    >>> summary.written, summary.failed
    """
    from stylekeras import defaults, stylize
    from stylekeras.image_io import load_image

    check_ray_installed()
    settings = settings if settings is not None else stylize.TransferSettings()
    stylize.check_batch(settings, batch_size)
    max_pixels = max_pixels or defaults.DEFAULT_MAX_PIXELS
    if isinstance(photos, (list, tuple)):
        contents = [str(photo) if storage.is_url(photo) else Path(photo).resolve() for photo in photos]
    else:
        contents = locate_photos(photos)
    style_paths = [Path(styles)] if isinstance(styles, (str, os.PathLike)) else [Path(style) for style in styles]
    folder = prepare_output_folder(output)
    job_options = dict(
        settings=settings, style_pixels=[load_image(style, label="style image", max_pixels=max_pixels) for style in style_paths],
        masks=None, options={}, save_every=0, max_pixels=max_pixels, checkpoint_every=checkpoint_every,
        resume=resume, logdir=None, progress_gif=None, contact_sheet=None,
        style_paths=[str(style.resolve()) for style in style_paths], flags={})
    recipe = WorkerRecipe(stylizer_options, job_options, Path(report).resolve() if report else None)
    return run_folder(contents, folder, recipe, cluster or ClusterSettings(), batch_size=batch_size,
                      skip_existing=skip_existing, quiet=quiet)


def locate_photos(photos: str | os.PathLike) -> list[Path] | list[str]:
    """The photos of a folder or pattern, as absolute paths (workers elsewhere find them), or of a folder
    URL or URL pattern, as URLs."""
    if storage.is_url(photos):
        return storage.photo_urls(str(photos))
    return [path.resolve() for path in batch_module.content_files(storage.local(str(photos)))]


def prepare_output_folder(output: str | os.PathLike) -> Path | str:
    """The output folder, checked writable before any work: an absolute path (created if missing), or a URL."""
    if storage.is_url(output):
        storage.check_writable(str(output))
        return str(output)
    folder = storage.local(str(output))
    batch_module.check_output_folder(folder)
    return folder.resolve()

