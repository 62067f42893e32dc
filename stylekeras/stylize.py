"""The optimization: a `tf.Variable` image moved by Adam or L-BFGS to minimize α·content + β·style + γ·tv.

`Stylizer` builds the feature model once and stylizes any number of images, one at a time or several of
one size in one batch (`Stylizer.transfer_batch`); `transfer` is the one-call form. They accept paths,
PIL images, arrays or tensors and return `StyleResult`s.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
import tomllib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields, replace

import keras
import numpy as np
import tensorflow as tf

from stylekeras import color
from stylekeras.checkpoint import Checkpoint, RunCheckpoints
from stylekeras.defaults import (
    DEFAULT_CONTENT_LAYERS,
    DEFAULT_PRECISION,
    DEFAULT_STYLE_LAYERS,
    DEFAULT_STYLE_NORMALIZATION,
    DEFAULT_TILE_MARGIN,
    FLAT_WINDOW,
    INITS,
    PHOTO_INITS,
    PRESETS,
    PRESETS_DIR,
)
from stylekeras.errors import StyleKerasError, check_choice
from stylekeras.features import (
    build_feature_model,
    check_layers,
    layer_channels,
    layer_shapes,
    min_input_size,
    resolve_precision,
)
from stylekeras.image_io import ImageSource, load_image, longer_side_shape, resize_longer_side
from stylekeras.objective import (
    Objective, StyleTarget, Targets, TemporalTarget, any_size_spec, balanced_layer_weights, loss_parts,
    StyleGrams, region_ring_shares, ring_shares, stack_targets, style_grams, temporal_loss_weights,
    WholeImageLoss,
)
from stylekeras.optimizers import LBFGS, TILED_TOLERATED_RISE, Adam
from stylekeras.settings import TransferSettings
from stylekeras.tiling import Tiling, tiled_feature_maps, tiled_normalized_grams
from stylekeras.weights import VGGWeights, resolve_weights

LOSS_NAMES = ("total", "content", "style", "tv")
# Peak memory of a whole-image float32 step through VGG19 per pixel, rounded down from the README's
# measurements ("memory"): `check_memory` refuses only runs that surely cannot fit.
STEP_BYTES_PER_PIXEL = 2048


@dataclass(frozen=True)
class FramePrior:
    """A video frame's link to the frame before (Ruder, Dosovitskiy & Brox 2016): `warped`, the previous
    frame's stylization moved onto this one along the optical flow (H×W×3 in [0, 1], the output's size),
    and `consistency` (H×W, 0 to 1), where that flow is reliable. There the run starts from `warped`
    (elsewhere from `init`, as an image would), and the temporal loss, weighted `weight` (λ, in the content
    loss's units: `objective.temporal_loss_weights`), keeps the result close to it."""

    warped: np.ndarray
    consistency: np.ndarray
    weight: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.weight) and self.weight >= 0):
            raise StyleKerasError(f"`temporal_weight` must be a finite number ≥ 0, got {self.weight}")
        if self.warped.ndim != 3 or self.warped.shape[-1] != 3 or self.consistency.shape != self.warped.shape[:2]:
            raise StyleKerasError(f"a frame prior needs an H×W×3 image and an H×W mask, got {self.warped.shape} "
                                  f"and {self.consistency.shape}")

    def at(self, shape: tuple[int, int], luminance: bool) -> tuple[np.ndarray, np.ndarray]:
        """The warped frame and the mask (H×W×1) at one scale's (height, width) `shape`; in luminance
        space when the run transfers luminance only (then the previous frame's colours are not its own)."""
        warped = color.luminance_image(self.warped) if luminance else self.warped
        return (tf.image.resize(warped, shape, method="bilinear", antialias=True).numpy(),
                tf.image.resize(self.consistency[..., None], shape, method="bilinear", antialias=True).numpy())


@dataclass(frozen=True)
class StepReport:
    """What a per-step callback sees: the step just done (1-based, over all scales), the losses before
    it, the image after it and the current scale's longer side; and, for a time left, the share of the
    run's work done (`work_done`) and the share the next step will take (`next_step_work`, 0 after the
    last): a step's time follows its scale's pixels, so a 1024 px run's 30 last steps take most of it."""

    step: int
    steps: int
    losses: dict[str, float]
    image: tf.Tensor
    size: int
    work_done: float = 0.0
    next_step_work: float = 0.0


@dataclass
class StyleResult:
    """The stylized H×W×3 image in [0, 1], the per-step loss history and how the run ended."""

    image: np.ndarray
    history: dict[str, np.ndarray]
    steps_done: int
    seconds: float
    device: str
    weights: str
    settings: TransferSettings
    stop_reason: str | None = None
    resumed_from: int = 0  # steps done before, by the run this one resumed from its checkpoint
    checkpoint_error: str | None = None  # why the latest checkpoint could not be written (the one before stays)


StepCallback = Callable[[StepReport], None]


class Stylizer:
    """A VGG feature model plus the loss layers, built once and reused for every image.

    `weights` and `backbone` choose the network (`resolve_weights`), the layers and `style_layer_weights`
    what it compares, `pooling`/`padding` how it runs, and `precision` its arithmetic: "auto" (bfloat16
    convolutions where the hardware has bfloat16 units, float32 elsewhere), "float32" or "mixed";
    `stylizer.precision` is the one in use. Its runs share the style images' Gram matrices, the traced
    loss (`whole_image_loss`) and the traced network that computes the targets (`feature_maps`; the photo's
    content layers alone, `content_maps`), each traced once for every size, so later scales and runs start
    sooner.

    >>> stylizer = Stylizer(weights="hed")
    >>> result = stylizer.transfer("photo.jpg", "painting.jpg", size=256, steps=100)
    """

    def __init__(
        self,
        *,
        backbone: str | None = None,
        weights: str | VGGWeights = "auto",
        style_layers: Sequence[str] = DEFAULT_STYLE_LAYERS,
        content_layers: Sequence[str] = DEFAULT_CONTENT_LAYERS,
        style_layer_weights: Sequence[float] | None = None,
        seed: int = 0,
        pooling: str = "max",
        padding: str = "zero",
        precision: str = DEFAULT_PRECISION,
    ) -> None:
        self.weights = resolve_weights(weights, backbone, seed)
        check_layers(self.weights.backbone, style_layers, "`style_layers`")
        check_layers(self.weights.backbone, content_layers, "`content_layers`")
        self.style_layers = tuple(style_layers)
        self.content_layers = tuple(content_layers)
        self.style_layer_weights = _layer_weights(self.style_layers, style_layer_weights)
        self.min_size = min_input_size(self.style_layers + self.content_layers)
        layers = list(dict.fromkeys(self.style_layers + self.content_layers))
        self.precision = resolve_precision(precision)
        self.model = build_feature_model(self.weights, layers, pooling, padding, self.precision)
        self.whole_image_loss = WholeImageLoss(self.model)
        # The targets' passes through the network run as a graph traced once for images of any size:
        # faster than the Keras model called eagerly (BENCHMARKS.md, "Design choices").
        self.feature_maps = tf.function(lambda images: self.model(images, training=False), autograph=False,
                                         input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])

        def content_maps(images: tf.Tensor) -> dict[str, tf.Tensor]:
            features = self.feature_maps(images)
            return {name: features[name] for name in self.content_layers}

        # The photo's pass returns only the content layers, so its graph runs only the layers up to the
        # deepest of them: after block2_conv2 (the default) the network only feeds the style layers. It
        # calls the traced network rather than tracing it again.
        self.content_maps = tf.function(content_maps, autograph=False,
                                        input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
        self._style_cache: dict[str, StyleGrams] = {}
        self.description = {
            "backbone": self.weights.backbone, "weights": self.weights.description, "pooling": pooling,
            "padding": padding, "precision": self.precision, "style_layers": self.style_layer_weights,
            "content_layers": list(self.content_layers),
        }

    def transfer(
        self,
        content: ImageSource,
        style: ImageSource | Sequence[ImageSource],
        *,
        style_masks: Sequence[ImageSource] | None = None,
        init_image: ImageSource | None = None,
        callback: StepCallback | None = None,
        checkpoint: str | os.PathLike | None = None,
        checkpoint_every: int = 50,
        resume: bool = False,
        within_step: Callable[[float], None] | None = None,
        prior: FramePrior | None = None,
        settings: TransferSettings | None = None,
        **options,
    ) -> StyleResult:
        """Stylize `content` with one style image or several (blended, or each in its mask's region).

        The run's settings are a `TransferSettings`, or its fields as keywords (`size=256, steps=100`).
        Everything is validated before any compute.
        With `checkpoint`, the run's state is saved there every `checkpoint_every` steps and when it stops
        early (deleted when it finishes); `resume=True` continues from that file, refusing if the inputs,
        model or settings (other than `steps`) differ. Tiled steps can take minutes: `within_step` is called
        after each window with the fraction of the step done, and may raise KeyboardInterrupt to stop at
        once (that step is then not applied). A video frame's `prior` (`FramePrior`) replaces `init` and adds
        the temporal loss (see `stylekeras.video`). `init_image` replaces `init` at the first scale: the run
        starts from that image resized to the photo's shape there (jcjohnson/neural-style's `-init_image`,
        e.g. a result to refine); finer scales start from the coarser result as always.
        """
        (result,) = self.transfer_batch([content], style, style_masks=style_masks, init_image=init_image,
                                        callbacks=[callback], checkpoints=[checkpoint],
                                        checkpoint_every=checkpoint_every, resume=resume,
                                        within_step=within_step, priors=None if prior is None else [prior],
                                        settings=settings, **options)
        return result

    def transfer_batch(
        self,
        contents: Sequence[ImageSource],
        style: ImageSource | Sequence[ImageSource],
        *,
        style_masks: Sequence[ImageSource] | None = None,
        init_image: ImageSource | None = None,
        callbacks: Sequence[StepCallback | None] | None = None,
        checkpoints: Sequence[str | os.PathLike | None] | None = None,
        checkpoint_every: int = 50,
        resume: bool = False,
        within_step: Callable[[float], None] | None = None,
        priors: Sequence[FramePrior] | None = None,
        settings: TransferSettings | None = None,
        **options,
    ) -> list[StyleResult]:
        """Stylize several photos with the same style(s) together: one network pass per step for all of them.

        Each photo gets what `transfer` would give it alone (its own losses, history, callback and
        checkpoint, interchangeable with a single run's), in less time per photo: no loss mixes the photos
        and Adam moves each pixel by its own gradient. The photos must have the same size at every scale
        (equal `scale_shapes`). `callbacks`, `checkpoints` and `priors` have one entry per photo; the other
        arguments are `transfer`'s (an `init_image` is every photo's start, resized to each). A batch of more
        than one photo needs Adam and no tiles (`check_batch`). The scales' targets are computed in a second
        thread, on the caller's device, while the steps run; callbacks run in the caller's thread.
        """
        unknown = set(options) - {field.name for field in fields(TransferSettings)}
        if unknown:
            raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")
        if settings is not None and options:
            raise TypeError("give either settings or its fields as keywords, not both")
        settings = settings if settings is not None else TransferSettings(**options)
        callbacks = list(callbacks) if callbacks is not None else [None] * len(contents)
        checkpoints = list(checkpoints) if checkpoints is not None else [None] * len(contents)
        if not len(contents) == len(callbacks) == len(checkpoints) == len(priors or contents) >= 1:
            raise ValueError("transfer_batch needs at least one photo, and one callback, checkpoint and prior entry per photo")
        check_batch(settings, len(contents))
        styles = list(style) if isinstance(style, (list, tuple)) else [style]
        label = "content image" if len(contents) == 1 else "photo {} of the batch"
        content_pixels = [load_image(image, label=label.format(i + 1)) for i, image in enumerate(contents)]
        style_pixels = [load_image(image, label=f"style image {i + 1}") for i, image in enumerate(styles)]
        masks = self._load_masks(style_masks, len(styles), content_pixels[0].shape)
        if init_image is not None and priors:
            raise StyleKerasError("`init_image`: a video frame starts from its prior; give one or the other")
        init_pixels = None if init_image is None else load_image(init_image, label="init image")
        blend = _blend_weights(settings.style_blend, len(styles))
        shapes = scale_shapes(content_pixels[0].shape, settings)
        for index, pixels in enumerate(content_pixels[1:], start=2):
            if scale_shapes(pixels.shape, settings) != shapes:
                raise StyleKerasError(
                    f"photo {index} of the batch is {pixels.shape[1]}×{pixels.shape[0]} px and photo 1 "
                    f"{content_pixels[0].shape[1]}×{content_pixels[0].shape[0]}; a batch needs photos of one size"
                )
        sizes = settings.sizes(max(content_pixels[0].shape[:2]))
        for prior in priors or []:
            if prior.warped.shape[:2] != shapes[-1]:
                raise StyleKerasError(f"a frame prior is {prior.warped.shape[1]}×{prior.warped.shape[0]} px and the "
                                      f"output {shapes[-1][1]}×{shapes[-1][0]}; it must have the output's size")
        for shape, size in zip(shapes, sizes):  # every scale's sizes are checked before the first step
            self.check_size(shape, label.format(1))
            for pixels in style_pixels:
                longer_side = style_size(pixels.shape, size, settings.style_scale)
                at_own_size = settings.style_scale is None and longer_side == max(pixels.shape[:2])
                self.check_size(longer_side_shape(pixels.shape, longer_side), "style image",
                                "it is not enlarged: use a larger one, or `style_scale` to enlarge it" if at_own_size
                                else None)
        tiling = self.tiling(settings)
        if not tf.config.list_physical_devices("GPU"):  # a GPU's own limit ends the run with a message instead
            check_memory(shapes[-1], settings, tiling, len(contents))

        run_checkpoints = RunCheckpoints(checkpoints, [None if path is None else {
            "inputs": _digest([pixels, *style_pixels, *(masks or []), *([] if init_pixels is None else [init_pixels]),
                               *([priors[index].warped, priors[index].consistency] if priors else [])]),
            "model": self.description,
            "settings": {**asdict(settings), "steps": None, "min_improvement": None,  # may change on resuming
                         **({"temporal_weight": priors[index].weight} if priors else {})},
        } for index, (pixels, path) in enumerate(zip(content_pixels, checkpoints))], checkpoint_every)
        saved = run_checkpoints.resume() if resume else None
        originals = content_pixels
        inputs = [_color_inputs(settings.preserve_color, pixels, style_pixels) for pixels in content_pixels]
        init_start = None if init_pixels is None else _color_inputs(settings.preserve_color, init_pixels, [])[0]

        steps = settings.scale_steps(max(content_pixels[0].shape[:2]))
        run = _Run(self.model, self.whole_image_loss, tiling, self.weights.description, settings, steps, shapes,
                   callbacks, run_checkpoints, saved, within_step)

        def at_size(size: int) -> tuple[list[np.ndarray], list[list[np.ndarray]]]:
            return ([resize_longer_side(pixels, size) for pixels, _ in inputs],
                    [[resize_longer_side(style, style_size(style.shape, size, settings.style_scale))
                      for style in photo_styles] for _, photo_styles in inputs])

        # The scales' targets are computed in a second thread, in order, while the first scale's start is made
        # and the steps run: the network's passes run without Python's lock, on the core that tracing the loss
        # and the step leaves idle (BENCHMARKS.md, "Design choices"). A `tf.device` scope belongs to the thread
        # that opened it, so the caller's device is carried over.
        device = tf.zeros([]).device

        def targets_at(contents_at_size: list[np.ndarray], styles_at_size: list[list[np.ndarray]]) -> Targets:
            with tf.device(device):
                return stack_targets([
                    self.targets(content, photo_styles, blend, masks, settings.style_normalization, tiling)
                    for content, photo_styles in zip(contents_at_size, styles_at_size)
                ])

        background = ThreadPoolExecutor(1, thread_name_prefix="stylekeras-targets")
        inputs_at = [at_size(size) for size in sizes]
        scale_targets = [None if run.skips(scale) else background.submit(targets_at, *inputs_at[scale])
                         for scale in range(len(sizes))]
        images = None
        maps = [None] * len(inputs)  # each photo's transport maps (`init="transport"`), fitted at the first scale
        try:
            for scale, size in enumerate(sizes):
                if run.skips(scale):
                    continue
                contents_at_size, styles_at_size = inputs_at[scale]
                at_scale = [prior.at(shapes[scale], settings.preserve_color == "luminance") for prior in priors or []]

                def start_images() -> np.ndarray:
                    # The maps are the first scale's also where its start was not made (a resumed run, an init image).
                    if settings.init == "transport" and None in maps and scale > 0:
                        maps[:] = [_transport_maps(color.smooth_chroma(content), photo_styles, settings.seed, blend)
                                   for content, photo_styles in zip(*inputs_at[0])]
                    starts = []
                    for photo, (content, photo_styles) in enumerate(zip(contents_at_size, styles_at_size)):
                        if settings.init == "transport":  # one fit a run: a photo's colours are alike at every size
                            start, maps[photo] = _transport_start(content, photo_styles, settings.seed, blend, maps[photo])
                        else:
                            start = initial_image(settings.init, content, photo_styles, settings.seed, blend)
                        starts.append(start)
                    starts = np.stack(starts)
                    if priors:  # a frame starts from the warp where it is trusted: elsewhere a wrong warp would stay as a ghost
                        starts = np.stack([mask * warped + (1 - mask) * start
                                           for (warped, mask), start in zip(at_scale, starts)])
                    return starts

                if images is None and init_start is not None:
                    images = np.stack([resized(init_start, content.shape[:2]) for content in contents_at_size])
                elif images is None:
                    images = start_images()
                else:  # coarse-to-fine: continue from the previous scale's result
                    details = None if settings.init not in PHOTO_INITS else np.stack([
                        photo_detail(start, images.shape[1:3], photo_styles, blend)
                        for start, photo_styles in zip(start_images(), styles_at_size)])
                    images = finer_start(images, shapes[scale], details).numpy()
                targets = scale_targets[scale].result()
                if priors:
                    targets = replace(targets, temporal=TemporalTarget(
                        tf.constant(np.stack([warped for warped, _ in at_scale])),
                        tf.constant(np.stack([mask for _, mask in at_scale])),
                        temporal_loss_weights([prior.weight for prior in priors], targets.content)))
                images = run.optimize(images, targets, size, scale)
                if run.stop_reason:
                    break
        finally:  # a run that stopped early drops the targets it will not use; no thread outlives the call
            background.shutdown(cancel_futures=True)

        if settings.preserve_color == "luminance":
            images = [color.with_chroma_of(image, resize_longer_side(original, max(image.shape[:2])))
                      for image, original in zip(images, originals)]
        return run.results(images)

    def tiling(self, settings: TransferSettings) -> Tiling | None:
        """The run's `Tiling` (None without `tile`), its sizes rounded up to the deepest layer's stride."""
        if settings.tile is None:
            return None
        stride = self.min_size
        return Tiling(-(-settings.tile // stride) * stride, -(-settings.tile_margin // stride) * stride, stride)

    def check_size(self, shape: tuple[int, int], label: str, remedy: str | None = None) -> None:
        """Check an image of (height, width) `shape` is large enough for the deepest layer used (`remedy`:
        what the error advises, by default a larger `size` or shallower layers)."""
        height, width = shape
        if min(height, width) < self.min_size:
            raise StyleKerasError(
                f"{label} is {width}×{height} px after resizing; the layers used need at least "
                f"{self.min_size} px on each side ({remedy or 'use a larger `size` or shallower layers'})"
            )

    def targets(
        self,
        content: np.ndarray,
        styles: Sequence[np.ndarray],
        blend: Sequence[float] | None = None,
        masks: Sequence[np.ndarray] | None = None,
        normalization: str = DEFAULT_STYLE_NORMALIZATION,
        tiling: Tiling | None = None,
    ) -> Targets:
        """The content image's feature maps, the style targets and the per-layer style weights, once per scale.

        Each style's Gram matrices are weighted to the result's ring shares (`objective.StyleGrams`; with a
        mask, its region's). Without masks they are averaged with the `blend` weights into one target (as
        jcjohnson/neural-style and crowsonkb do); with masks each style keeps its own target and region.
        Images larger than the `tiling` window are passed through the network tile by tile.
        """
        blend = blend or [1.0 / len(styles)] * len(styles)
        if tiling is not None and tiling.needed(*content.shape[:2]):
            content_targets = tiled_feature_maps(self.model, content, self.content_layers, tiling)
        else:
            content_targets = self.content_maps(content[None])
        if masks is None:
            shares = ring_shares(self.style_layers, *content.shape[:2])
            grams = [self.style_grams(style, tiling).for_ring_shares(shares) for style in styles]
            targets = [StyleTarget({name: tf.add_n([w * g[name] for w, g in zip(blend, grams)])
                                    for name in self.style_layers}, None, 1.0)]
        else:
            shapes = dict(layer_shapes(self.weights.backbone, *content.shape[:2]))
            per_layer = [_mask_per_layer(mask, content.shape[:2], shapes, self.style_layers) for mask in masks]
            grams = [self.style_grams(style, tiling).for_ring_shares(region_ring_shares(mask))
                     for style, mask in zip(styles, per_layer)]
            targets = [StyleTarget(gram, mask, weight) for gram, mask, weight in zip(grams, per_layer, blend)]
        layer_weights = dict(self.style_layer_weights)
        if normalization == "balanced":
            balanced = balanced_layer_weights(content_targets, grams[0], layer_weights)
            layer_weights = {name: float(weight) for name, weight in balanced.items()}
        return Targets(content_targets, targets, layer_weights)

    def style_grams(self, style: np.ndarray, tiling: Tiling | None = None) -> StyleGrams:
        """A style image's `StyleGrams`, remembered: a batch with one style computes them once."""
        key = _digest([style])
        if key not in self._style_cache:
            if len(self._style_cache) >= 8:  # bounded: only the latest style images stay in memory
                self._style_cache.pop(next(iter(self._style_cache)))
            if tiling is not None and tiling.needed(*style.shape[:2]):
                grams = StyleGrams(*tiled_normalized_grams(self.model, style, self.style_layers, tiling),
                                   ring_shares(self.style_layers, *style.shape[:2]))
            else:
                grams = style_grams(self.feature_maps, style[None], self.style_layers)
            self._style_cache[key] = grams
        return self._style_cache[key]

    def loss_parts(self, images: tf.Tensor, targets: Targets) -> dict[str, tf.Tensor]:
        """The unweighted content, style and total-variation losses of `images` against `targets` (see
        `objective.loss_parts`): each `[batch]`, one value per image. The network runs as it does for the
        targets (`feature_maps`), so a content image scores a content loss of exactly 0 in bfloat16 too."""
        return loss_parts(self.feature_maps, images, targets)

    def _load_masks(self, sources, count: int, content_shape) -> list[np.ndarray] | None:
        if sources is None:
            return None
        if len(sources) != count:
            raise StyleKerasError(f"`style_masks`: {len(sources)} masks for {count} style images")
        masks = []
        for index, source in enumerate(sources, start=1):
            mask = load_image(source, label=f"style mask {index}").mean(axis=-1)
            if abs(mask.shape[0] / mask.shape[1] - content_shape[0] / content_shape[1]) > 0.02 * content_shape[0] / content_shape[1]:
                raise StyleKerasError(
                    f"style mask {index} is {mask.shape[1]}×{mask.shape[0]} px but the content image is "
                    f"{content_shape[1]}×{content_shape[0]}; masks need the content's aspect ratio"
                )
            masks.append(mask)
        return masks


class _Run:
    """One transfer of a batch of photos across its scales: each photo's loss history, callback and
    checkpoint, the step count and how it ended (a batch stops together)."""

    def __init__(self, model: keras.Model, whole_image_loss: WholeImageLoss, tiling: Tiling | None, weights: str,
                 settings: TransferSettings, scale_steps: Sequence[int], scale_shapes: Sequence[tuple[int, int]],
                 callbacks: Sequence[StepCallback | None], checkpoints: RunCheckpoints,
                 resume: list[Checkpoint] | None = None, within_step: Callable[[float], None] | None = None) -> None:
        self.model = model
        self.whole_image_loss = whole_image_loss
        self.tiling = tiling
        self.weights = weights
        self.within_step = within_step
        self.settings = settings
        self.scale_steps = list(scale_steps)
        self.total_steps = sum(scale_steps)
        # A step's work is its scale's pixels: the network's cost is linear in them (`StepReport.work_done`).
        self.step_work = [height * width for height, width in scale_shapes]
        self.total_work = sum(steps * work for steps, work in zip(self.scale_steps, self.step_work))
        self.callbacks = callbacks
        self.checkpoints = checkpoints
        self.resume = resume
        self.histories = ([saved.meta["history"] for saved in resume] if resume else
                          [{name: [] for name in (*LOSS_NAMES, "size")} for _ in callbacks])
        self.done = self.resumed_from = resume[0].meta["done"] if resume else 0
        self.work_done = 0.0
        if resume:  # as the step total does, the scales before the checkpoint's count as run whole
            scale, step = resume[0].meta["scale"], resume[0].meta["step"]
            self.work_done = sum(steps * work for steps, work in zip(self.scale_steps[:scale], self.step_work))
            self.work_done += step * self.step_work[scale]
        self.stop_reason: str | None = None
        self.started = time.perf_counter()
        self.device = ""

    def skips(self, scale: int) -> bool:
        """Whether a resumed run already finished this scale."""
        return self.resume is not None and scale < self.resume[0].meta["scale"]

    def optimize(self, start: np.ndarray, targets: Targets, size: int, scale: int) -> np.ndarray:
        """Run scale `scale`'s steps on the `[photos, H, W, 3]` images and return them (or their moving
        averages): the step loop is `optimize`; this sets up its state (restored when resuming) and records
        each step (history, checkpoint, callbacks)."""
        settings = self.settings
        steps = self.scale_steps[scale]
        resume, self.resume = self.resume, None
        start = np.stack([saved.image for saved in resume]) if resume else start
        # Height and width left open, so every scale and size steps through one trace (`_apply_step`).
        image = tf.Variable(start, name="image", shape=[start.shape[0], None, None, 3])
        self.device = image.device
        average = _Average(image, settings.average) if settings.average is not None else None
        loss_weights = settings.loss_weights(*start.shape[1:3])
        objective = Objective(self.model, targets, loss_weights, image, self.tiling, settings.seed,
                              self.whole_image_loss)
        optimizer = make_optimizer(settings, image, objective.tiled)
        state = [*optimizer.variables, *(average.variables if average else [])]
        if resume:
            if len(resume[0].optimizer_state) != len(optimizer.variables):
                raise StyleKerasError("`resume`: the checkpoint's optimizer state is from another version of "
                                      "stylekeras; start the run again without `resume`")
            saved_state = [[*saved.optimizer_state, *saved.average_state] for saved in resume]
            for index, variable in enumerate(state):
                variable.assign(_join_photos([photo[index] for photo in saved_state], start.shape))
        step_in_scale = resume[0].meta["step"] if resume else 0

        def save() -> None:
            pixels = image.numpy()
            values = [_split_photos(variable.numpy(), pixels.shape) for variable in state]
            per_photo = [[value[photo] for value in values] for photo in range(pixels.shape[0])]
            split = len(optimizer.variables)
            self.checkpoints.save({"scale": scale, "step": step_in_scale, "done": self.done}, self.histories,
                                  pixels, [photo_state[:split] for photo_state in per_photo],
                                  [photo_state[split:] for photo_state in per_photo])

        flattened = False  # every photo's loss has stopped falling by `min_improvement`: the scale ends

        def record(parts: dict[str, tf.Tensor]) -> bool:
            nonlocal step_in_scale, flattened
            self.done += 1
            step_in_scale += 1
            if average is not None:
                average.update()
            values = _per_photo(parts, len(self.callbacks))
            for history, photo_values in zip(self.histories, values):
                for name in LOSS_NAMES:
                    history[name].append(photo_values[name])
                if "temporal" in photo_values:  # a video frame's
                    history.setdefault("temporal", []).append(photo_values["temporal"])
                history["size"].append(size)
            if settings.min_improvement and step_in_scale < steps and all(
                    loss_flattened(history["total"][len(history["total"]) - step_in_scale:], settings.min_improvement)
                    for history in self.histories):
                flattened = True
                self.total_steps -= steps - step_in_scale  # the progress bar's total and ETA follow
                self.total_work -= (steps - step_in_scale) * self.step_work[scale]
            self.work_done += self.step_work[scale]
            if self.checkpoints.due(self.done):
                save()
            next_step = (self.step_work[scale] if step_in_scale < steps and not flattened else
                         self.step_work[scale + 1] if scale + 1 < len(self.step_work) else 0)
            for photo, callback in enumerate(self.callbacks):
                if callback is not None:
                    callback(StepReport(self.done, self.total_steps, values[photo], image[photo], size,
                                        self.work_done / self.total_work, next_step / self.total_work))
            return flattened

        numbers = range(self.done, self.done + steps - step_in_scale)  # the run's step numbers
        try:
            optimize(image, lambda step: objective(step, self.within_step), optimizer, numbers, record,
                     lambda step: objective.loss(step, self.within_step))
        except NonFiniteLoss as error:
            self.stop_reason = _non_finite_reason(self.done + 1, _per_photo(error.parts, len(self.callbacks)),
                                                  loss_weights)
        except KeyboardInterrupt:
            self.stop_reason = f"interrupted after step {self.done} of {self.total_steps}"
        except tf.errors.ResourceExhaustedError:
            photos, height, width = start.shape[:3]
            batch = f" in a batch of {photos}" if photos > 1 else ""
            self.stop_reason = (
                f"out of memory at {width}×{height} px{batch} after step {self.done}; use `tile=512` (memory then "
                f"follows the tile) or `precision='mixed'`, lower `size`{' or `batch_size`' if batch else ''}, or use "
                f"fewer or shallower `style_layers`"
            )
        if self.stop_reason:
            save()
        return (average.value() if average is not None and average.weight > 0 else image).numpy()

    def results(self, images: Sequence[np.ndarray]) -> list[StyleResult]:
        if self.stop_reason is None:
            self.checkpoints.finish()
        seconds = time.perf_counter() - self.started
        return [StyleResult(
            image=image,
            history={name: np.asarray(values) for name, values in history.items()},
            steps_done=self.done,
            seconds=seconds,
            device=self.device,
            weights=self.weights,
            settings=self.settings,
            stop_reason=self.stop_reason,
            resumed_from=self.resumed_from,
            checkpoint_error=self.checkpoints.unwritten.get(photo),
        ) for photo, (image, history) in enumerate(zip(images, self.histories))]


class _Average:
    """A bias-corrected exponential moving average of the image (as Adam's moments, Kingma & Ba 2015).

    Averaging the iterates smooths the high-frequency flicker Adam leaves in the image (crowsonkb uses 0.99).
    """

    def __init__(self, image: tf.Variable, decay: float) -> None:
        self.image = image
        self.decay = decay
        self.sum = tf.Variable(tf.zeros_like(image), trainable=False)
        self.weight = tf.Variable(0.0, trainable=False)

    @property
    def variables(self) -> list[tf.Variable]:
        return [self.sum, self.weight]

    def update(self) -> None:
        self.sum.assign(self.decay * self.sum + (1.0 - self.decay) * self.image)
        self.weight.assign(self.decay * self.weight + (1.0 - self.decay))

    def value(self) -> tf.Tensor:
        return self.sum / self.weight


class NonFiniteLoss(Exception):
    """The loss or its gradient stopped being finite; `parts` are the loss parts of that step."""

    def __init__(self, parts: dict[str, tf.Tensor]) -> None:
        super().__init__("the loss or its gradient is not finite")
        self.parts = parts


def make_optimizer(settings: TransferSettings, image: tf.Variable, tiled: bool = False
                   ) -> LBFGS | Adam:
    """The optimizer `settings` names, with its default learning rate unless one is given, built for `image`
    (`tiled`: its loss is measured tile by tile, on a grid that moves every step)."""
    if settings.optimizer == "lbfgs":
        optimizer = LBFGS(settings.lbfgs_history, settings.optimizer_learning_rate,
                          TILED_TOLERATED_RISE if tiled else 1.0)
    else:
        optimizer = Adam(settings.optimizer_learning_rate)
    optimizer.build([image])
    return optimizer


def loss_flattened(losses: Sequence[float], min_improvement: float, window: int = FLAT_WINDOW) -> bool:
    """Whether the last of a scale's `losses` (one a step) is above (1 − `min_improvement`) times the one
    `window` steps before it: the loss has flattened, and more steps would hardly change the picture."""
    return len(losses) > window and losses[-1] > (1.0 - min_improvement) * losses[-1 - window]


def optimize(image: tf.Variable, objective: Callable[[int], tuple[dict[str, tf.Tensor], tf.Tensor]],
             optimizer: LBFGS | Adam, steps: Sequence[int],
             after_step: Callable[[dict[str, tf.Tensor]], bool | None],
             loss: Callable[[int], dict[str, tf.Tensor]] | None = None) -> None:
    """The step loop (Gatys et al.'s backpropagation into the image): for each step number in `steps`, the
    loss parts and gradient `objective(step)` at the image, one `optimizer` step clipped to [0, 1], and
    `after_step(parts)`, which ends the loop by returning True. L-BFGS's safeguard may shorten a step; its
    accepted evaluation starts the next one. `loss(step)`, the loss parts alone (a forward pass), if given,
    checks the last step: nothing would use the gradient there.

    Raises `NonFiniteLoss` before a non-finite loss, gradient or update reaches the image; whatever
    `after_step` raises (e.g. KeyboardInterrupt) stops the loop after a complete step. The step is traced
    once per batch size for images declared with their height and width open (`tf.Variable(pixels,
    shape=[photos, None, None, 3])`, as `Stylizer` makes them), once per shape for others.
    """
    arguments = (type(optimizer), optimizer.settings, optimizer.variables, image)
    # The loss and gradient given as specs of any height and width: with the image and optimizer state
    # declared the same way (as `_Run` makes them), one trace serves every scale, photo and frame.
    apply_step = _apply_step.get_concrete_function(*arguments, tf.TensorSpec([image.shape[0]], tf.float32),
                                                   any_size_spec(image))
    evaluation = None  # the loss and gradient at the current image, when the last step computed them
    for step in steps:
        parts, gradient = evaluation or objective(step)
        if not apply_step(*arguments, parts["total"], gradient):
            raise NonFiniteLoss(parts)
        if isinstance(optimizer, LBFGS):
            last = loss is not None and step == steps[-1]
            evaluation = optimizer.safeguard(image, parts["total"],
                                             (lambda: (loss(step + 1), None)) if last else lambda: objective(step + 1))
        if after_step(parts):
            break


# Traced once for every optimizer of one kind and settings and every image of one declared shape, whatever
# their variables: the state and the image are arguments, not captured, so the scales, photos and frames of
# a process share a trace instead of each paying one (BENCHMARKS.md, "Design choices"). Without autograph
# (its conversion of the optimizers' code cost every run's first step), hence tf.cond.
@tf.function(autograph=False)
def _apply_step(kind: type, settings: tuple, state: list[tf.Variable], image: tf.Variable, total: tf.Tensor,
                gradient: tf.Tensor) -> tf.Tensor:
    """One step of the optimizer `kind.with_state(settings, state)` on `image`, clipped to [0, 1]; False (and
    nothing changed) where the loss, the gradient or the stepped image is not finite."""
    optimizer = kind.with_state(settings, state)

    def step_from_gradient() -> tf.Tensor:
        before = tf.identity(image)
        optimizer.apply_gradients([(gradient, image)])
        # A finite but huge gradient can still overflow Adam's second moment into a NaN image.
        finite = tf.reduce_all(tf.math.is_finite(image))
        tf.cond(finite, lambda: image.assign(tf.clip_by_value(image, 0.0, 1.0)), lambda: image.assign(before))
        return finite

    finite = tf.reduce_all(tf.math.is_finite(total)) & tf.reduce_all(tf.math.is_finite(gradient))
    return tf.cond(finite, step_from_gradient, lambda: finite)


def transfer(
    content: ImageSource,
    style: ImageSource | Sequence[ImageSource],
    *,
    backbone: str | None = None,
    weights: str | VGGWeights = "auto",
    style_layers: Sequence[str] = DEFAULT_STYLE_LAYERS,
    content_layers: Sequence[str] = DEFAULT_CONTENT_LAYERS,
    style_layer_weights: Sequence[float] | None = None,
    pooling: str = "max",
    padding: str = "zero",
    precision: str = DEFAULT_PRECISION,
    **options,
) -> StyleResult:
    """One-call style transfer: build a `Stylizer` and run `Stylizer.transfer(content, style, **options)`."""
    stylizer = Stylizer(backbone=backbone, weights=weights, style_layers=style_layers, content_layers=content_layers,
                        style_layer_weights=style_layer_weights, seed=options.get("seed", 0), pooling=pooling,
                        padding=padding, precision=precision)
    return stylizer.transfer(content, style, **options)


# The keyword arguments of `transfer` that are `Stylizer`'s (the network); the others are `Stylizer.transfer`'s.
NETWORK_OPTIONS = ("style_layers", "content_layers", "style_layer_weights")


def preset(name: str) -> dict:
    """A preset shipped with stylekeras (the command's `--config NAME`) as keyword arguments of `transfer`:
    "neural-style" is jcjohnson/neural-style's default run (stylekeras/presets/neural-style.toml derives
    its weights); "bold" is the defaults with the style loss weighted toward the deeper layers, for larger
    strokes. Those in `NETWORK_OPTIONS` are `Stylizer`'s arguments, the others `Stylizer.transfer`'s; give
    your own after it to override one.

    >>> result = stylekeras.transfer("photo.jpg", "painting.jpg", **stylekeras.preset("neural-style"))
    """
    check_choice("`name`", name, PRESETS)
    options = {key.replace("-", "_"): value
               for key, value in tomllib.loads((PRESETS_DIR / f"{name}.toml").read_text()).items()}
    for key in ("style_layers", "content_layers"):  # comma-separated on the command line
        if key in options:
            options[key] = tuple(options[key].split(","))
    if "style_layer_weights" in options:
        options["style_layer_weights"] = tuple(float(weight) for weight in options["style_layer_weights"].split(","))
    return options


def initial_image(init: str, content: np.ndarray, styles: Sequence[np.ndarray], seed: int,
                  blend: Sequence[float] | None = None) -> np.ndarray:
    """The starting point: ("palette") the content image recoloured to the styles' colour mean and
    covariance (of their pixels pooled with the `blend` weights) — Gatys et al. 2017's colour matching in
    the other direction, so the optimization starts in the painting's palette; ("transport") the content
    image with its chroma smoothed, recoloured halfway between the palette's match and the styles' whole
    colour distribution (`color.transport_start`, seeded); the content image as it is, uniform noise
    (seeded), the first style image at content size."""
    check_choice("`init`", init, INITS)
    if init == "content":
        return content
    if init == "palette":
        return color.match_color_statistics(content, styles, blend)
    if init == "transport":
        return _transport_start(content, styles, seed, blend)[0]
    if init == "noise":
        return np.random.default_rng(seed).uniform(0.0, 1.0, content.shape).astype(np.float32)
    return resized(styles[0], content.shape[:2])


def _transport_start(content: np.ndarray, styles: Sequence[np.ndarray], seed: int, blend: Sequence[float] | None,
                     maps: color.TransportMaps | None = None) -> tuple[np.ndarray, color.TransportMaps]:
    """`initial_image("transport", ...)` and its maps: `maps` applied if given (fitted at another size of the
    same photo), else fitted here (`_transport_maps`)."""
    smooth = color.smooth_chroma(content)
    if maps is None:
        maps = _transport_maps(smooth, styles, seed, blend)
    mean, covariance = color.color_statistics(styles, blend)
    return color.transport_start(smooth, mean, covariance, maps).numpy(), maps


def _transport_maps(smooth: np.ndarray | tf.Tensor, styles: Sequence[np.ndarray], seed: int,
                    blend: Sequence[float] | None) -> color.TransportMaps:
    """The transport's maps from the photo with its chroma smoothed to the styles' `painting_sample`."""
    return color.fit_transport(smooth, color.painting_sample(styles, blend, seed), seed)


def resized(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """`image` (H×W×3) resized to (height, width) `shape`, whatever its aspect ratio (a start image)."""
    return tf.image.resize(image, shape, method="bilinear", antialias=True).numpy()


def finer_start(coarse: np.ndarray | tf.Tensor, shape: tuple[int, int] | tf.Tensor,
                details: np.ndarray | tf.Tensor | None = None) -> tf.Tensor:
    """Where a finer scale of (height, width) `shape` starts: the coarser scale's result (`coarse`,
    `[photos, h, w, 3]`) upsampled, plus `details` (`[photos, *shape, 3]`, `photo_detail`'s), the photo's
    band that the coarser scale cannot hold, as a Laplacian pyramid adds its levels (STROTSS, Kolkin, Salavon
    & Shakhnarovich 2019, adds the photo's band to each upsampled scale the same way). The coarse scale keeps
    the composition and the large strokes; upsampled alone (no `details`), it leaves the finer scale a blur
    to rebuild edges and texture from, which takes several steps more and leaves grain (QUALITY.md)."""
    upsampled = tf.image.resize(coarse, shape, method="bicubic")
    return tf.clip_by_value(upsampled if details is None else upsampled + details, 0.0, 1.0)


def photo_detail(start: np.ndarray, coarse_shape: tuple[int, int], styles: Sequence[np.ndarray],
                 blend: Sequence[float] | None = None) -> np.ndarray:
    """The detail a finer scale adds to the upsampled result (`finer_start`): the band of the photo `start`
    (H×W×3, as `initial_image` made it) above what (height, width) `coarse_shape` holds, scaled by
    min(1, the painting's energy in the same band / the photo's) (mean squares; `styles` pooled with the
    `blend` weights). Starry Night, with more detail than the benchmark's photos, gets the photo's whole
    band; a flat painting (Udnie) only part of it, depending on the photo: the whole band stayed in its
    results as the photo's texture (QUALITY.md, "A finer scale starts from the photo's detail")."""
    ratio = max(coarse_shape) / max(start.shape[:2])
    painting = sum(weight * float(detail_energy(style[None], ratio))
                   for weight, style in zip(blend or [1.0 / len(styles)] * len(styles), styles))
    return scaled_detail(start[None], coarse_shape, painting)[0].numpy()


def detail_energy(images: tf.Tensor, ratio: float | tf.Tensor) -> tf.Tensor:
    """The mean square (float64) of `[1, H, W, 3]` `images`' band above what `ratio` × their size holds: a
    painting's share of `photo_detail`, which a served stylizer's `style_targets` returns per scale."""
    shape = tf.cast(tf.shape(images)[1:3], tf.float64)
    coarse = tf.maximum(1, tf.cast(tf.round(shape * tf.cast(ratio, tf.float64)), tf.int32))
    return tf.cast(tf.reduce_mean(tf.square(_band_above(images, coarse))), tf.float64)


def scaled_detail(starts: tf.Tensor, coarse_shape: tuple[int, int] | tf.Tensor, painting: float | tf.Tensor) -> tf.Tensor:
    """`photo_detail` of `[1, H, W, 3]` `starts` from the painting's `detail_energy` (float64)."""
    band = _band_above(starts, coarse_shape)
    photo = tf.cast(tf.reduce_mean(tf.square(band)), tf.float64)
    scale = tf.where(photo > 0, tf.minimum(tf.constant(1.0, tf.float64), tf.math.divide_no_nan(painting, photo)), 0.0)
    return band * tf.cast(scale, tf.float32)


def _band_above(images: tf.Tensor, shape: tuple[int, int] | tf.Tensor) -> tf.Tensor:
    """`images` (`[n, H, W, 3]`) less what an image of (height, width) `shape` holds of them (area down,
    bicubic back up): a level of their Laplacian pyramid."""
    return images - tf.image.resize(tf.image.resize(images, shape, method="area"), tf.shape(images)[1:3],
                                    method="bicubic")


def check_memory(shape: tuple[int, int], settings: TransferSettings, tiling: Tiling | None, photos: int = 1,
                 memory: int | None = None) -> None:
    """Refuse, before any compute, a run whose largest scale (height, width) `shape` needs more than
    `memory` bytes (default: this machine's RAM): the network's activations for a step, bounded by the
    tile window when tiled, plus the optimizer's copies of the image."""
    memory = memory or os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    height, width = shape
    window = min(height, tiling.window) * min(width, tiling.window) if tiling else height * width
    # The image, its gradient and the optimizer's state: Adam's two moments or L-BFGS's pairs of vectors,
    # one store of which is copied while a step reads it (`LBFGS._store_pair`; README, "memory").
    copies = 4 + (3 * settings.lbfgs_history if settings.optimizer == "lbfgs" else 0)
    image_bytes = photos * copies * height * width * 3 * 4
    needed = image_bytes + photos * window * STEP_BYTES_PER_PIXEL
    if needed > memory:
        tiled = image_bytes + photos * (512 + 2 * DEFAULT_TILE_MARGIN) ** 2 * STEP_BYTES_PER_PIXEL
        advice = ("`tile=512` (memory then follows the tile) or a lower `size`" if not tiling and tiled <= memory
                  else "a lower `size`")
        raise StyleKerasError(f"a step at {width}×{height} px needs about {needed / 2**30:.1f} GiB of memory, more "
                              f"than the {memory / 2**30:.1f} GiB here; use {advice}")


def check_batch(settings: TransferSettings, photos: int) -> None:
    """Refuse settings a batch of several photos cannot honour, before any compute."""
    if photos > 1 and settings.optimizer == "lbfgs":
        raise StyleKerasError("`batch_size`: L-BFGS's step length is shared by the whole image, so photos "
                              "stylized together would not each get their own result; add `optimizer='adam'` (with about 5× the "
                              "`steps`) or use `batch_size=1`")
    if photos > 1 and settings.tile is not None:
        raise StyleKerasError("`batch_size`: tiles are for one photo too large for memory; use `batch_size=1` with `tile`")


def style_size(shape: tuple[int, ...], size: int, style_scale: float | None = None) -> int:
    """The longer side a style image of `shape` (H, W, …) is resized to at a scale whose output's longer side
    is `size`: `size × style_scale`; with `style_scale` None, `size` but never more than the image's own, since
    an enlarged painting has no strokes finer than its own pixels and its Gram matrices ask for blur."""
    if style_scale is not None:
        return round(size * style_scale)
    return min(size, max(shape[:2]))


def scale_shapes(shape: tuple[int, ...], settings: TransferSettings) -> tuple[tuple[int, int], ...]:
    """The (height, width) an image of `shape` has at each of the run's scales: photos with equal ones
    can be stylized in one batch."""
    return tuple(longer_side_shape(shape, size) for size in settings.sizes(max(shape[:2])))


def _per_photo(parts: dict[str, tf.Tensor], photos: int) -> list[dict[str, float]]:
    values = {name: np.asarray(value) for name, value in parts.items()}  # one copy each, not one per photo
    return [{name: float(value[photo]) for name, value in values.items()} for photo in range(photos)]


def _split_photos(value: np.ndarray, image_shape: tuple[int, ...]) -> list[np.ndarray]:
    """Optimizer or average state as each photo's own: state of the images' `[photos, H, W, 3]` shape is
    per pixel (Adam's moments, the average), anything else (the step count) is shared."""
    if value.shape == tuple(image_shape):
        return [value[photo:photo + 1] for photo in range(value.shape[0])]
    return [value] * image_shape[0]


def _join_photos(values: list[np.ndarray], image_shape: tuple[int, ...]) -> np.ndarray:
    """The inverse of `_split_photos`."""
    return np.concatenate(values) if values[0].shape == (1, *image_shape[1:]) else values[0]


def _color_inputs(mode: str | None, content: np.ndarray, styles: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """The images the optimization sees: as given, styles recoloured ("histogram"), or luminance only."""
    if mode == "histogram":
        return content, [color.match_color_statistics(style, content) for style in styles]
    if mode == "luminance":
        return color.luminance_image(content), [color.luminance_image(style, like=content) for style in styles]
    return content, styles


def _digest(images: Sequence[np.ndarray]) -> str:
    """A fingerprint of the input pixels, so a resumed run can tell it has the same images."""
    digest = hashlib.sha256()
    for pixels in images:
        digest.update(str(pixels.shape).encode())
        digest.update(np.ascontiguousarray(pixels).tobytes())
    return digest.hexdigest()


def _blend_weights(blend: Sequence[float] | None, count: int) -> list[float] | None:
    if blend is None:
        return None
    if len(blend) != count:
        raise StyleKerasError(f"`style_blend`: {len(blend)} weights for {count} style images")
    return [weight / sum(blend) for weight in blend]


def _mask_per_layer(mask: np.ndarray, shape, layer_shapes_by_name, layers) -> dict[str, tf.Tensor]:
    """The mask resized to the content image and then area-averaged down to each layer's resolution."""
    full = tf.image.resize(mask[None, ..., None], shape, method="bilinear")
    return {
        name: tf.image.resize(full, layer_shapes_by_name[name][:2], method="area")
        for name in layers
    }


def _layer_weights(layers: tuple[str, ...], weights: Sequence[float] | None) -> dict[str, float]:
    if weights is None:
        # w_l ∝ 1/N_l: between equal weights, which smear faces, and jcjohnson/neural-style's 1/N_l², which
        # lets the 3 px conv1_1 lead and paints a fine texture over the photo. Somewhat larger strokes for a
        # little of the photo's structure (QUALITY.md, "Style layers weighted 1/N, not 1/N²").
        inverses = {name: 1.0 / layer_channels(name) for name in layers}
        return {name: value / sum(inverses.values()) for name, value in inverses.items()}
    if len(weights) != len(layers):
        raise StyleKerasError(f"`style_layer_weights`: {len(weights)} weights for {len(layers)} style layers")
    if any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
        raise StyleKerasError("`style_layer_weights` must be ≥ 0 and not all zero")
    return {name: float(weight) for name, weight in zip(layers, weights)}


def _non_finite_reason(step: int, values: list[dict[str, float]], loss_weights: tuple[float, float, float]) -> str:
    """Which weighted loss of which photo overflowed (a batch stops together, keeping its last good images)."""
    float32_max = float(np.finfo(np.float32).max)
    photo = next((index for index, photo_values in enumerate(values) if not abs(photo_values["total"]) <= float32_max), 0)
    weighted = {name: values[photo][name] * weight for name, weight in zip(("content", "style", "tv"), loss_weights)}
    culprits = [name for name, value in weighted.items() if not abs(value) <= float32_max] or ["total"]
    whose = f"photo {photo + 1}'s " if len(values) > 1 else "the "
    if abs(values[photo]["total"]) <= float32_max:  # every loss finite: the optimizer's update overflowed
        what = f"{whose}update overflowed (loss {values[photo]['total']:.3g})"
    else:
        what = f"{whose}{' and '.join(culprits)} loss became {values[photo]['total']}"
    return (
        f"{what} at step {step}; stopped and kept the image{'s' if len(values) > 1 else ''} from step {step - 1}. "
        "Try smaller loss weights or a smaller `learning_rate`"
    )
