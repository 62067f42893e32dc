"""The stylizer as a TensorFlow Serving SavedModel: the whole optimization runs inside the graph.

`export_stylizer` writes `<base>/<name>/<version>/` (atomically, as `stylekeras.export` does). Each
signature runs the library's coarse-to-fine scales (`TransferSettings.sizes`: by default 256 px, then
doubling up to the result's size) as a `tf.while_loop`, and at each scale a `tf.while_loop` over the
library's own step — `objective.loss_and_gradient` (the losses of `stylekeras.losses`) and the optimizer's
update, clipped to [0, 1] as in `stylize.optimize`: L-BFGS with the library's safeguard, its last step
checked with the loss alone (`optimizers.lbfgs_minimize`, by default), or Adam (`optimizers.adam_minimize`)
— with the image and the optimizer's state as loop variables, so concurrent requests share nothing but
the network's weights. A scale's targets come from the photo and the style resized to it, as the
library's do; a finer scale starts from the coarser result upsampled plus the photo's detail
(`stylize.finer_start`). The first starts as the library's does (`stylize.initial_image`, in the same
TensorFlow ops of `stylekeras.color`): the photo recoloured halfway to the style's whole colour
distribution (`init="transport"`, the default), to its colour mean and covariance ("palette"), or as it
is ("content"). Its arithmetic is the export's `precision`, float32 or the library's bfloat16
convolutions ("mixed", for serving machines with bfloat16 units); inputs and outputs are the same either
way:

- `stylize` (also `serving_default`): `content` float32 [1, H, W, 3] and `style` float32 [1, h, w, 3],
  RGB in [0, 1] → `image` float32 [1, H', W', 3];
- `stylize_bytes`: `content_bytes` and `style_bytes`, encoded JPEG/PNG/GIF/BMP scalar strings →
  `image_png`, a PNG string;
- `style_targets`: `style` and `size` (the result's longer side; 0: the style's) → for each scale of a
  result of that size, one row of: a Gram matrix per style layer, `[scales, N, N]`, under the layer's
  name, the style's `color_mean` [scales, 3] and `color_covariance` [scales, 3, 3] (float64), its
  `ring_shares` [scales, layers] and `ring_grams` [scales, Σ N²] (float32: `objective.StyleGrams`' shares
  and ring Gram matrices, flattened and joined in layer order), its `detail_energy` [scales] (float64,
  `stylize.detail_energy`; NaN at the first scale) and its `color_sample` [scales, samples, 3] (float32,
  `color.painting_sample`: the pixels the transport start maps onto; a request fits its maps to the first
  scale's, as the library fits them once a run), for a client to cache;
- `stylize_with_targets`: `content` and those outputs → what `stylize` gives with that style, when they
  were made for the request's size. Targets of one scale (one row each) run one scale, at the result's
  size. Without the first scale's `color_sample` a transport export starts from the palette, and without a
  scale's two colour statistics from the photo as it is; without `ring_shares` and `ring_grams` the Gram
  matrices are used as they are, not weighted to the result's ring (`losses.gram_for_ring_share`); without
  `detail_energy` a finer scale adds the photo's whole detail.

Each also returns `total_loss`, `content_loss`, `style_loss` and `tv_loss` ([1]: the losses the last
step started from, as the library's history records them) and `steps_done` (all scales' steps; fewer than
asked when the loss stopped being finite, which ends the request: the image is then the last finite one).
Optional scalar inputs, with the export's defaults: `steps` (at the first scale; half as many at each finer
one, as the library takes them) and `size` (int32; the longer side of the result, 0 = the content's own
size; the style is resized to each scale's longer side, never enlarged, as the library does),
`content_weight`, `style_weight`, `tv_weight` and `learning_rate` (float32). A request outside the export's
limits fails with INVALID_ARGUMENT before any step: images below the network's minimum size at any scale or
larger than `max_pixels` once resized, inputs larger than the library's `DEFAULT_MAX_PIXELS`, more than one
image, pixels or Gram matrices that are not finite, targets for another number of scales, `steps` above
`max_steps`, weights that are negative or not finite, bytes that do not decode. A step is one loss
evaluation with Adam, one to `optimizers.MAX_HALVINGS` with L-BFGS (and one more after a step its safeguard
gave up on): an L-BFGS request takes at most (`MAX_HALVINGS` + 1) evaluations a step, in practice a little
over one.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from stylekeras import color, defaults
from stylekeras.errors import StyleKerasError, check_choice
from stylekeras.export import (
    SETTINGS_FILE,
    WARMUP_FILE,
    check_version,
    decode_image,
    run_with_c_api,
    serving_api_installed,
    replay_warmup,
    serving_apis,
    write_version,
)
from stylekeras.image_io import longer_side_shape_tensor, resize_longer_side, resized_longer_side
from stylekeras.objective import (
    StyleGrams, StyleTarget, Targets, balanced_layer_weights, loss_and_gradient, ring_shares, size_scaled_loss_weights,
    style_grams, total_loss_parts,
)
from stylekeras.optimizers import adam_minimize, lbfgs_minimize
from stylekeras.stylize import (
    LOSS_NAMES, Stylizer, TransferSettings, detail_energy, finer_start, scaled_detail, style_size,
)

SIGNATURES = ("stylize", "stylize_bytes", "style_targets", "stylize_with_targets")
# The style's colour statistics that `style_targets` returns and `stylize_with_targets` takes (float64, one
# row a scale; the shapes of one scale).
COLOR_INPUTS = {"color_mean": [1, 3], "color_covariance": [1, 3, 3]}
# The style's `objective.StyleGrams` beyond its Gram matrices, which `style_targets` returns and
# `stylize_with_targets` takes: its ring share at each style layer (float32 [scales, layers]) and its ring
# Gram matrices, flattened and joined in layer order (float32 [scales, Σ N²]).
RING_SHARES, RING_GRAMS = "ring_shares", "ring_grams"
# The style's energy in the band a finer scale adds (`stylize.detail_energy`; float64 [scales], NaN at the
# first), which scales the photo's detail there as the library does.
DETAIL_ENERGY = "detail_energy"
# The style's pixels the `transport` start maps the photo's colours onto (`color.painting_sample`; float32
# [scales, samples, 3]).
COLOR_SAMPLE = "color_sample"
# Steps of each warmup request: enough to run the loop's body, cheap at TF Serving's start-up.
WARMUP_STEPS = 2
# Optional scalar inputs of every stylizing signature, in order, with their dtypes.
SCALARS = {"steps": tf.int32, "size": tf.int32, "content_weight": tf.float32, "style_weight": tf.float32,
           "tv_weight": tf.float32, "learning_rate": tf.float32}


@dataclass(frozen=True)
class StylizerExportSettings:
    """What a stylizer export was made from and the defaults and limits of its requests, stored beside it."""

    name: str
    backbone: str
    weights: str
    seed: int
    style_layers: tuple[str, ...]
    content_layers: tuple[str, ...]
    style_layer_weights: tuple[float, ...]
    min_size: int
    max_pixels: int
    max_steps: int
    steps: int
    size: int
    content_weight: float
    style_weight: float
    tv_weight: float
    learning_rate: float
    style_normalization: str
    kind: str = "stylizer"
    init: str = "content"  # exports made before the palette start began from the photo
    precision: str = "float32"  # and before `precision`, in float32
    optimizer: str = "adam"  # and before `optimizer`, with Adam
    lbfgs_history: int = defaults.DEFAULT_LBFGS_HISTORY
    scales: int | None = 1  # and before `scales`, at one scale
    start_size: int | None = None

    def transfer_settings(self, **overrides) -> TransferSettings:
        """The library's settings that give what a request with these defaults gives (`size` 0 → None)."""
        values = {"steps": self.steps, "size": self.size or None, "content_weight": self.content_weight,
                  "style_weight": self.style_weight, "tv_weight": self.tv_weight, "learning_rate": self.learning_rate,
                  "style_normalization": self.style_normalization, **overrides}
        return TransferSettings(optimizer=self.optimizer, lbfgs_history=self.lbfgs_history, scales=self.scales,
                                start_size=self.start_size, init=self.init, **values)


def export_stylizer(
    base_path: str | os.PathLike = defaults.DEFAULT_EXPORT_PATH,
    *,
    name: str | None = None,
    version: int | None = None,
    overwrite: bool = False,
    backbone: str | None = None,
    weights: str = "auto",
    seed: int = 0,
    style_layers: tuple[str, ...] = defaults.DEFAULT_STYLE_LAYERS,
    content_layers: tuple[str, ...] = defaults.DEFAULT_CONTENT_LAYERS,
    optimizer: str = defaults.DEFAULT_SERVED_OPTIMIZER,
    steps: int | None = None,
    size: int = defaults.DEFAULT_SIZE,
    content_weight: float = defaults.DEFAULT_CONTENT_WEIGHT,
    style_weight: float | None = None,
    tv_weight: float = defaults.DEFAULT_TV_WEIGHT,
    learning_rate: float | None = None,
    style_normalization: str = defaults.DEFAULT_STYLE_NORMALIZATION,
    init: str = defaults.DEFAULT_SERVED_INIT,
    scales: int | None = defaults.DEFAULT_SCALES,
    start_size: int | None = None,
    precision: str = defaults.DEFAULT_SERVED_PRECISION,
    max_pixels: int = defaults.DEFAULT_SERVING_MAX_PIXELS,
    max_steps: int = defaults.DEFAULT_SERVING_MAX_STEPS,
) -> Path:
    """Write a TF-Serving-ready SavedModel whose signatures run the whole stylization; return its version folder.

    The network, layers and loss settings are the library's (`Stylizer`, `TransferSettings`), run at the
    `scales` from `start_size` that `TransferSettings` takes (by default the library's coarse to fine; 1: one
    scale, as exports made before `scales`) with `optimizer` ("lbfgs", with the library's safeguard, or
    "adam") from `init` ("transport", "palette" or "content", as `stylize.initial_image` starts) in
    `precision`: "float32", or "mixed"
    (the library's bfloat16 convolutions: several times faster where the *serving* machines have AMX,
    AVX512-BF16 or an Ampere+ GPU, several times slower where they have not); `steps` … `learning_rate` are
    the requests' defaults (None: the optimizer's, `defaults.DEFAULT_SERVING_STEPS` and the library's
    learning rate), `max_pixels` and `max_steps` what one request may ask for. Versions work as in
    `export_feature_extractor`.
    """
    check_version(version)
    check_choice("`optimizer`", optimizer, defaults.OPTIMIZERS)
    check_choice("`init`", init, defaults.SERVED_INITS)
    check_choice("`precision`", precision, defaults.SERVED_PRECISIONS)
    for option, value in (("max_pixels", max_pixels), ("max_steps", max_steps)):
        if value < 1:
            raise StyleKerasError(f"`{option}` must be ≥ 1, got {value}")
    if size < 0:
        raise StyleKerasError(f"`size` must be ≥ 0 px (0: the content's own size), got {size}")
    steps = defaults.DEFAULT_SERVING_STEPS[optimizer] if steps is None else steps
    transfer = TransferSettings(steps=steps, size=size or None, content_weight=content_weight, style_weight=style_weight,
                                tv_weight=tv_weight, learning_rate=learning_rate, optimizer=optimizer,
                                style_normalization=style_normalization, scales=scales, start_size=start_size)
    if steps > max_steps:
        raise StyleKerasError(f"`steps={steps}` is above `max_steps={max_steps}`")
    stylizer = Stylizer(backbone=backbone, weights=weights, style_layers=style_layers, content_layers=content_layers,
                        seed=seed, precision=precision)
    if size and not stylizer.min_size <= size <= math.isqrt(max_pixels):
        raise StyleKerasError(f"`size={size}` must be at least {stylizer.min_size} px, and a square image of that size "
                              f"must fit `max_pixels={max_pixels}`")
    settings = StylizerExportSettings(
        name=name or f"{stylizer.weights.backbone}_stylizer", backbone=stylizer.weights.backbone,
        weights=weights if weights != "auto" else stylizer.weights.source, seed=seed,
        style_layers=stylizer.style_layers, content_layers=stylizer.content_layers,
        style_layer_weights=tuple(stylizer.style_layer_weights.values()), min_size=stylizer.min_size,
        max_pixels=max_pixels, max_steps=max_steps, steps=steps, size=size, content_weight=transfer.content_weight,
        style_weight=transfer.style_weight, tv_weight=transfer.tv_weight,
        learning_rate=transfer.optimizer_learning_rate, style_normalization=style_normalization,
        init=init, precision=precision, optimizer=optimizer, lbfgs_history=transfer.lbfgs_history, scales=scales,
        start_size=start_size,
    )
    return write_version(Path(base_path), settings.name, version, overwrite,
                         lambda target: _write_saved_model(stylizer, settings, target))


def read_stylizer_settings(export_dir: str | os.PathLike) -> StylizerExportSettings:
    """The settings a stylizer export was made with (from its `assets.extra/stylekeras.json`)."""
    values = json.loads((Path(export_dir) / SETTINGS_FILE).read_text())
    if values.get("kind") != "stylizer":
        raise StyleKerasError(f"'{export_dir}' is not a stylizer export (made by `stylekeras export --stylizer`)")
    return StylizerExportSettings(**{key: tuple(value) if isinstance(value, list) else value for key, value in values.items()})


def is_stylizer_export(export_dir: str | os.PathLike) -> bool:
    path = Path(export_dir) / SETTINGS_FILE
    return path.is_file() and json.loads(path.read_text()).get("kind") == "stylizer"


def rebuild_stylizer(settings: StylizerExportSettings) -> Stylizer:
    """The in-process `Stylizer` an export was made from."""
    return Stylizer(backbone=settings.backbone, weights=settings.weights, seed=settings.seed,
                    style_layers=settings.style_layers, content_layers=settings.content_layers,
                    style_layer_weights=settings.style_layer_weights, precision=settings.precision)


class StylizerGraph(tf.Module):
    """The signatures as `tf.function`s around one `Stylizer`'s feature model (its variables are tracked
    here, so `tf.saved_model.save` stores them)."""

    def __init__(self, stylizer: Stylizer, settings: StylizerExportSettings) -> None:
        super().__init__(name="stylizer")
        self._stylizer = stylizer
        self._settings = settings
        self.model_variables = [weight.value for weight in stylizer.model.weights]
        image = tf.TensorSpec([None, None, None, 3], tf.float32)
        scalars = [tf.TensorSpec([], dtype, name=name) for name, dtype in SCALARS.items()]
        self._channel_counts = self._channels()
        self._seed = settings.transfer_settings().seed  # the library's draws for the transport start
        grams = {name: tf.TensorSpec([None, channels, channels], tf.float32, name=name)
                 for name, channels in self._channel_counts.items()}
        defaults_ = [tf.constant(getattr(settings, name), dtype) for name, dtype in SCALARS.items()]

        def stylize(content, style, steps=defaults_[0], size=defaults_[1], content_weight=defaults_[2],
                    style_weight=defaults_[3], tv_weight=defaults_[4], learning_rate=defaults_[5]):
            return self._stylize(content, None, style, steps, size, content_weight, style_weight, tv_weight, learning_rate)

        def stylize_bytes(content_bytes, style_bytes, steps=defaults_[0], size=defaults_[1], content_weight=defaults_[2],
                          style_weight=defaults_[3], tv_weight=defaults_[4], learning_rate=defaults_[5]):
            outputs = stylize(decode_image(content_bytes)[None], decode_image(style_bytes)[None], steps, size,
                              content_weight, style_weight, tv_weight, learning_rate)
            return {"image_png": _encode_png(outputs.pop("image")[0]), **outputs}

        def style_targets(style, size=defaults_[1]):
            style = self._checked(style, "style")
            size = _requiring(size, [(size >= 0, "size: must be ≥ 0 (0 keeps the style's size)")])
            return self._style_targets(style, self._sizes(tf.where(size > 0, size, tf.reduce_max(tf.shape(style)[1:3]))))

        nan = tf.constant(float("nan"), tf.float64)
        unknown = {name: tf.fill(shape, nan) for name, shape in COLOR_INPUTS.items()}  # → the photo as start
        shares_shape = [None, len(stylizer.style_layers)]
        unknown_shares = tf.fill([1, shares_shape[1]], float("nan"))  # → the Gram matrices as they are
        unknown_rings = tf.fill([1, 1], float("nan"))
        unknown_detail = tf.fill([1], nan)  # → the photo's whole detail at a finer scale
        unknown_sample = tf.fill([1, 1, 3], float("nan"))  # → the palette start instead of the transport

        def stylize_with_targets(content, targets, steps=defaults_[0], size=defaults_[1], content_weight=defaults_[2],
                                 style_weight=defaults_[3], tv_weight=defaults_[4], learning_rate=defaults_[5],
                                 color_mean=unknown["color_mean"], color_covariance=unknown["color_covariance"],
                                 ring_shares=unknown_shares, ring_grams=unknown_rings, detail_energy=unknown_detail,
                                 color_sample=unknown_sample):
            targets = {**targets, "color_mean": color_mean, "color_covariance": color_covariance,
                       RING_SHARES: ring_shares, RING_GRAMS: ring_grams, DETAIL_ENERGY: detail_energy,
                       COLOR_SAMPLE: color_sample}
            return self._stylize(content, targets, None, steps, size, content_weight, style_weight, tv_weight, learning_rate)

        self.stylize = tf.function(stylize, input_signature=[
            tf.TensorSpec(image.shape, tf.float32, name="content"), tf.TensorSpec(image.shape, tf.float32, name="style"),
            *scalars])
        self.stylize_bytes = tf.function(stylize_bytes, input_signature=[
            tf.TensorSpec([], tf.string, name="content_bytes"), tf.TensorSpec([], tf.string, name="style_bytes"), *scalars])
        self.style_targets = tf.function(style_targets, input_signature=[
            tf.TensorSpec(image.shape, tf.float32, name="style"), scalars[1]])
        self.stylize_with_targets = tf.function(stylize_with_targets, input_signature=[
            tf.TensorSpec(image.shape, tf.float32, name="content"), grams, *scalars,
            *(tf.TensorSpec([None, *shape[1:]], tf.float64, name=name) for name, shape in COLOR_INPUTS.items()),
            tf.TensorSpec(shares_shape, tf.float32, name=RING_SHARES),
            tf.TensorSpec([None, None], tf.float32, name=RING_GRAMS),
            tf.TensorSpec([None], tf.float64, name=DETAIL_ENERGY),
            tf.TensorSpec([None, None, 3], tf.float32, name=COLOR_SAMPLE)])

    def _channels(self) -> dict[str, int]:
        probe = self._stylizer.model(tf.zeros([1, self._settings.min_size, self._settings.min_size, 3]), training=False)
        return {name: int(probe[name].shape[-1]) for name in self._stylizer.style_layers}

    def _checked(self, images: tf.Tensor, label: str) -> tf.Tensor:
        """One image, of at most the library's `DEFAULT_MAX_PIXELS`, with finite pixels."""
        shape = tf.shape(images)
        return _requiring(images, [
            (shape[0] == 1, f"{label}: one image, shape [1, height, width, 3]"),
            (tf.cast(shape[1], tf.int64) * tf.cast(shape[2], tf.int64) <= defaults.DEFAULT_MAX_PIXELS,
             f"{label}: more than {defaults.DEFAULT_MAX_PIXELS} pixels"),
            (tf.reduce_all(tf.math.is_finite(images)), f"{label}: pixels must be finite"),
        ])

    def _working(self, images: tf.Tensor, size: tf.Tensor, label: str, enlarge: bool = True) -> tf.Tensor:
        """`images` with the longer side `size` (0: as they are; without `enlarge`, at most as they are, as
        `stylize.style_size` sizes a style image), checked against the export's limits before they are
        resized."""
        shape = tf.shape(images)[1:3]
        size = tf.where(size > 0, size, tf.reduce_max(shape))
        if not enlarge:
            size = tf.minimum(size, tf.reduce_max(shape))
        working = longer_side_shape_tensor(shape, size)
        pixels = tf.cast(working[0], tf.int64) * tf.cast(working[1], tf.int64)
        limits = self._settings
        images = _requiring(images, [
            (size >= 0, "size: must be ≥ 0 (0 keeps the content's size)"),
            (tf.reduce_min(working) >= limits.min_size,
             f"{label}: must be at least {limits.min_size}×{limits.min_size} px once resized to `size` and each scale"),
            (pixels <= limits.max_pixels, f"{label}: more than max_pixels={limits.max_pixels} pixels once resized to `size`"),
        ])
        return resized_longer_side(images, size)

    def _sizes(self, size: tf.Tensor) -> tf.Tensor:
        return scale_sizes(size, self._settings.scales, self._settings.start_size)

    def _stylize(self, content, targets, style, steps, size, content_weight, style_weight, tv_weight, learning_rate):
        limits = self._settings
        scalars = _requiring(tf.stack([content_weight, style_weight, tv_weight, learning_rate]), [
            ((steps >= 0) & (steps <= limits.max_steps), f"steps: must be between 0 and max_steps={limits.max_steps}"),
            *((tf.math.is_finite(value) & (value >= 0), f"{name}: must be a finite number ≥ 0")
              for name, value in (("content_weight", content_weight), ("style_weight", style_weight),
                                  ("tv_weight", tv_weight))),
            (tf.math.is_finite(learning_rate) & (learning_rate > 0), "learning_rate: must be a finite number > 0"),
        ])
        content = self._checked(content, "content")
        result = self._working(content, size, "content")  # checked at the result's size before any scale runs
        sizes = self._sizes(tf.reduce_max(tf.shape(result)[1:3]))
        if targets is None:
            targets = self._style_targets(self._checked(style, "style"), sizes)
        else:  # one scale's targets run one scale; style_targets' for the request's size run every scale
            layers = self._stylizer.style_layers
            given = tf.shape(targets[layers[0]])[0]
            sizes = tf.cond(given == 1, lambda: sizes[-1:], lambda: sizes)
            checks = {name: [((tf.shape(value)[0] == given) | ((tf.shape(value)[0] == 1) & (name not in layers)),
                              f"{name}: one row a scale, as many as the Gram matrices have (or one, for every scale)")]
                      for name, value in targets.items()}
            checks[layers[0]].append((given == tf.size(sizes), "targets: Gram matrices for one scale or for each "
                                                               "scale the request runs (style_targets with its size)"))
            targets = {name: _requiring(value, checks[name]) for name, value in targets.items()}
        scale_steps = tf.where(steps > 0, tf.maximum(1, steps // 2), 0)  # as TransferSettings.scale_steps
        minimize = self._minimizer(limits, scalars[3])

        def at_scale(index, image, done, last, stopped, maps):
            content_at = self._working(content, sizes[index], "content")
            height, width = tf.shape(content_at)[1], tf.shape(content_at)[2]
            one = {name: value[tf.minimum(index, tf.shape(value)[0] - 1)][None] for name, value in targets.items()}
            grams = self._grams_for(one, height, width)
            start, maps = self._start(content_at, one["color_mean"][0], one["color_covariance"][0],
                                      one[COLOR_SAMPLE][0], maps, index == 0)
            # A finer scale starts from the coarser result and the photo's detail (both starts are the photo);
            # without the style's detail energy, the photo's whole detail.
            painting = one[DETAIL_ENERGY][0]
            painting = tf.where(tf.math.is_finite(painting), painting, float("inf"))
            start = tf.cond(index > 0, lambda: finer_start(image, [height, width], scaled_detail(
                start, tf.shape(image)[1:3], painting)), lambda: start)
            model = self._stylizer.model
            content_features = model(content_at, training=False)
            content_targets = {name: content_features[name] for name in self._stylizer.content_layers}
            layer_weights = dict(zip(self._stylizer.style_layers, limits.style_layer_weights))
            if limits.style_normalization == "balanced":
                layer_weights = balanced_layer_weights(content_targets, grams, layer_weights)
            run_targets = Targets(content_targets, [StyleTarget(grams, None, 1.0)], layer_weights)
            loss_weights = size_scaled_loss_weights(tuple(tf.unstack(scalars[:3])), tf.cast(height * width, tf.float32))
            evaluate = lambda image: loss_and_gradient(model, image, run_targets, loss_weights)  # noqa: E731
            loss = lambda image: total_loss_parts(model, image, run_targets, loss_weights)  # noqa: E731
            wanted = tf.where(index == 0, steps, scale_steps)
            image, done_here, last = minimize(evaluate, loss, start, wanted)
            return index + 1, image, done + done_here, last, done_here < wanted, maps

        nothing = {name: tf.fill([1], float("nan")) for name in LOSS_NAMES}
        unfitted = color.TransportMaps(*(tf.fill(shape, tf.constant(float("nan"), tf.float64))
                                         for shape in color.TRANSPORT_MAP_SHAPES))
        _, image, done, last, _, _ = tf.while_loop(
            lambda index, image, done, last, stopped, maps: (index < tf.size(sizes)) & ~stopped, at_scale,
            (tf.constant(0), result, tf.constant(0), nothing, tf.constant(False), unfitted),
            shape_invariants=(tf.TensorShape([]), tf.TensorShape([None, None, None, 3]), tf.TensorShape([]),
                              {name: tf.TensorShape([None]) for name in LOSS_NAMES}, tf.TensorShape([]),
                              color.TransportMaps(*map(tf.TensorShape, color.TRANSPORT_MAP_SHAPES))),
            parallel_iterations=1)
        return {"image": image, "steps_done": done, **{f"{name}_loss": value for name, value in last.items()}}

    def _minimizer(self, limits: StylizerExportSettings, learning_rate: tf.Tensor):
        """The export's optimizer as a function of (evaluate, loss, start, steps): `lbfgs_minimize` or
        `adam_minimize` (which needs no loss alone)."""
        if limits.optimizer == "lbfgs":
            return lambda evaluate, loss, start, steps: lbfgs_minimize(
                evaluate, start, steps, limits.lbfgs_history, learning_rate, LOSS_NAMES, loss=loss)
        return lambda evaluate, loss, start, steps: adam_minimize(evaluate, start, steps, learning_rate, LOSS_NAMES)

    def _style_targets(self, style: tf.Tensor, sizes: tf.Tensor) -> dict[str, tf.Tensor]:
        """At each scale of longer side `sizes` (the style at that size, never enlarged, as the library takes
        it): one Gram matrix per style layer, the style's colour mean and covariance, its ring shares and
        ring Gram matrices, its detail energy at a finer scale (`stylize.detail_energy`) and the colour sample
        the transport start maps onto (`color.painting_sample`)."""
        longer = tf.reduce_max(tf.shape(style)[1:3])
        layers = self._stylizer.style_layers

        def one_scale(scale):
            index, size = scale
            at_scale = self._working(style, tf.minimum(size, longer), "style", enlarge=False)
            mean, covariance = color.color_statistics([at_scale[0]])
            coarser = tf.cast(sizes[tf.maximum(index - 1, 0)], tf.float64) / tf.cast(size, tf.float64)
            energy = tf.cond(index > 0, lambda: detail_energy(at_scale, coarser), lambda: tf.constant(float("nan"), tf.float64))
            return {**{name: value[0] for name, value in _flattened(style_grams(self._stylizer.model, at_scale, layers)).items()},
                    "color_mean": mean, "color_covariance": covariance, DETAIL_ENERGY: energy,
                    COLOR_SAMPLE: color.painting_sample([at_scale[0]], seed=self._seed)}

        grams = {name: tf.TensorSpec([channels, channels], tf.float32) for name, channels in self._channel_counts.items()}
        ring_values = sum(channels ** 2 for channels in self._channel_counts.values())
        return tf.map_fn(one_scale, (tf.range(tf.size(sizes)), sizes), parallel_iterations=1, fn_output_signature={
            **grams, RING_SHARES: tf.TensorSpec([len(layers)], tf.float32),
            RING_GRAMS: tf.TensorSpec([ring_values], tf.float32), "color_mean": tf.TensorSpec([3], tf.float64),
            "color_covariance": tf.TensorSpec([3, 3], tf.float64), DETAIL_ENERGY: tf.TensorSpec([], tf.float64),
            COLOR_SAMPLE: tf.TensorSpec([color.TRANSPORT_SAMPLES, 3], tf.float32)})

    def _grams_for(self, targets: dict[str, tf.Tensor], height: tf.Tensor, width: tf.Tensor) -> dict[str, tf.Tensor]:
        """The style's Gram matrices for a `height`×`width` result: weighted to its ring shares
        (`objective.StyleGrams.for_ring_shares`) when the targets carry the ring's, as they are otherwise."""
        layers, channels = self._stylizer.style_layers, self._channel_counts
        grams = {name: _requiring(targets[name], [(tf.reduce_all(tf.math.is_finite(targets[name])),
                                                   f"{name}: must be finite")]) for name in layers}
        sizes = [channels[name] ** 2 for name in layers]
        shares, rings = targets[RING_SHARES], targets[RING_GRAMS]
        given = tf.reduce_all(tf.math.is_finite(shares)) & tf.reduce_all(tf.math.is_finite(rings))
        rings = _requiring(rings, [(~given | (tf.size(rings) == sum(sizes)),
                                    f"{RING_GRAMS}: must hold {sum(sizes)} values a scale, as style_targets returns")])

        def weighted() -> dict[str, tf.Tensor]:
            parts = tf.split(tf.reshape(rings, [-1]), sizes)
            style = StyleGrams(grams, {name: tf.reshape(part, [1, channels[name], channels[name]])
                                       for name, part in zip(layers, parts)},
                               {name: shares[0, index] for index, name in enumerate(layers)})
            return style.for_ring_shares(ring_shares(layers, height, width))

        return tf.cond(given, weighted, lambda: grams)

    def _start(self, content: tf.Tensor, mean: tf.Tensor, covariance: tf.Tensor, sample: tf.Tensor,
               maps: color.TransportMaps, first: tf.Tensor) -> tuple[tf.Tensor, color.TransportMaps]:
        """Where a request's scale starts, as `stylize.initial_image` makes it, and the transport's maps: the
        photo recoloured halfway to the style's whole colour distribution (`init="transport"`,
        `color.transport_start`, by `maps` fitted at the `first` scale to its `color_sample`, as the library
        fits them once a run), to its colour mean and covariance (`init="palette"`), or as it is
        (`init="content"`). A `stylize_with_targets` request without the first scale's `color_sample` starts
        from the palette, and without a scale's colour statistics from the photo as it is."""
        init = self._settings.init
        if init == "content":
            return content, maps
        known = tf.reduce_all(tf.math.is_finite(mean)) & tf.reduce_all(tf.math.is_finite(covariance))

        def palette() -> tf.Tensor:
            return tf.cond(known, lambda: color.match_to_statistics(content[0], mean, covariance)[None], lambda: content)

        if init == "palette":
            return palette(), maps
        smooth = color.smooth_chroma(content[0])
        maps = tf.cond(first & known & tf.reduce_all(tf.math.is_finite(sample)),
                       lambda: color.fit_transport(smooth, sample, self._seed), lambda: maps)
        fitted = known & tf.reduce_all(tf.math.is_finite(maps.bases))
        return tf.cond(fitted, lambda: color.transport_start(smooth, mean, covariance, maps)[None], palette), maps


def scale_sizes(size: tf.Tensor | int, scales: int | None, start_size: int | None) -> tf.Tensor:
    """`TransferSettings(scales=scales, start_size=start_size).sizes(size)` in TensorFlow ops, for a `size`
    known at run time: the longer side at each scale, coarse to fine (int32 [scales])."""
    size = tf.cast(size, tf.int32)
    if scales is None:  # doubling from the start size up to `size`
        start = tf.minimum(start_size or defaults.MIN_START_SIZE, size)
        count = tf.while_loop(lambda count: start * 2 ** (count - 1) < size, lambda count: (count + 1,),
                              (tf.constant(1),))[0]
    elif start_size is None:  # halving from `size`, none below MIN_START_SIZE
        count = tf.while_loop(lambda count: (count < scales) & (
            tf.cast(size, tf.float64) / tf.cast(2 ** count, tf.float64) >= defaults.MIN_START_SIZE),
            lambda count: (count + 1,), (tf.constant(1),))[0]
        start = tf.cast(tf.round(tf.cast(size, tf.float64) / tf.cast(2 ** (count - 1), tf.float64)), tf.int32)
    else:
        count, start = tf.constant(scales), tf.constant(start_size)
    start, exponents = tf.cast(start, tf.float64), tf.range(count, dtype=tf.float64)
    spacing = exponents / tf.cast(tf.maximum(count - 1, 1), tf.float64)
    geometric = tf.cast(tf.round(start * (tf.cast(size, tf.float64) / start) ** spacing), tf.int32)
    return tf.cond(count == 1, lambda: size[None], lambda: geometric)


def _requiring(value: tf.Tensor, conditions) -> tf.Tensor:
    """`value`, once every (condition, message) holds; one that does not fails the request with
    INVALID_ARGUMENT and its message."""
    checks = [tf.debugging.Assert(condition, [message]) for condition, message in conditions]
    with tf.control_dependencies(checks):
        return tf.identity(value)


def _write_saved_model(stylizer: Stylizer, settings: StylizerExportSettings, target: Path) -> None:
    graph = StylizerGraph(stylizer, settings)
    signatures = {name: getattr(graph, name) for name in SIGNATURES}
    tf.saved_model.save(graph, str(target), signatures={**signatures, "serving_default": graph.stylize})
    (target / "assets.extra").mkdir(exist_ok=True)
    (target / SETTINGS_FILE).write_text(json.dumps(asdict(settings), indent=2))
    if serving_api_installed():
        write_warmup_requests(target / WARMUP_FILE, settings, graph)


def sample_requests(settings: StylizerExportSettings) -> tuple[np.ndarray, np.ndarray]:
    """A small (content, style) pair at the export's minimum useful size, on the 8-bit grid and scaled as
    `decode_image` scales levels (so PNG copies decode to the same bits: a bfloat16 export's result moves
    with a last-bit difference), for warmup and checks: large enough for two scales where the export has
    several (just above the first scale's size)."""
    size = max(settings.min_size * 4, 32)
    if settings.scales != 1:
        first = settings.start_size or defaults.MIN_START_SIZE
        halving = settings.scales is not None and settings.start_size is None  # from `size`: two need twice the first
        size = max(size, 2 * first if halving else first + 8)
    rng = np.random.default_rng(1)
    content, style = (rng.integers(0, 256, (1, *shape, 3)).astype(np.float32) / np.float32(255)
                      for shape in ((size, size), (size + 8, size - 8)))
    return content, style


def write_warmup_requests(path: Path, settings: StylizerExportSettings, graph: StylizerGraph) -> None:
    """A TFRecord of PredictionLogs, one small request per signature, which TF Serving replays at load."""
    predict_pb2, prediction_log_pb2 = serving_apis()
    content, style = sample_requests(settings)
    run = {"steps": np.int32(WARMUP_STEPS), "size": np.int32(0)}
    requests = {
        "stylize": {"content": content, "style": style, **run},
        "stylize_bytes": {"content_bytes": _png(content), "style_bytes": _png(style), **run},
        "style_targets": {"style": style, "size": np.int32(content.shape[1])},
        "stylize_with_targets": {"content": content, **run,
                                 **{name: gram.numpy() for name, gram in graph.style_targets(
                                     style, np.int32(content.shape[1])).items()}},
    }
    with tf.io.TFRecordWriter(str(path)) as writer:
        for signature, inputs in requests.items():
            request = predict_pb2.PredictRequest()
            request.model_spec.name = settings.name
            request.model_spec.signature_name = signature
            for key, value in inputs.items():
                request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())


def _encode_png(image: tf.Tensor) -> tf.Tensor:
    """An H×W×3 image in [0, 1] as a PNG string, rounded as `image_io.to_uint8`."""
    return tf.io.encode_png(tf.cast(tf.round(image * 255.0), tf.uint8))


def _png(images: np.ndarray) -> bytes:
    return _encode_png(images[0]).numpy()


# Pixels of an exported stylizer's image may differ from the library's by this much (values in [0, 1]):
# the same ops in the same order, so in practice they are equal; the margin covers other kernels' rounding.
IMAGE_TOLERANCE = 1e-4


@dataclass(frozen=True)
class StylizerCheck:
    """One request checked one way: its largest difference from the library's answer, or whether a bad
    request was `refused` with INVALID_ARGUMENT and a message naming what is wrong."""

    signature: str
    loader: str
    what: str
    difference: float = 0.0
    tolerance: float = 0.0
    refused: bool | None = None

    @property
    def passed(self) -> bool:
        return self.refused if self.refused is not None else self.difference <= self.tolerance

    def __str__(self) -> str:
        verdict = "ok" if self.passed else "FAILED"
        if self.refused is not None:
            return f"{self.signature:<21} {self.loader:<26} {self.what}: {'refused' if self.refused else 'NOT refused with a message naming it'} {verdict}"
        return (f"{self.signature:<21} {self.loader:<26} {self.what}: max |diff| {self.difference:.2e} "
                f"(≤ {self.tolerance:g}) {verdict}")


def check_stylizer_export(export_dir: str | os.PathLike, steps: int = 8) -> list[StylizerCheck]:
    """Prove a stylizer export gives the library's result, through the loaders TF Serving uses.

    1. TensorFlow's C API (TF_LoadSessionFromSavedModel + TF_SessionRun, in a process without TensorFlow's
       Python package): `stylize`, `style_targets`, `stylize_with_targets` and `stylize_bytes` (string
       tensors in and out) on a small pair, each against `Stylizer.transfer` with the same settings
       (`StylizerExportSettings.transfer_settings`) — images within `IMAGE_TOLERANCE`, the PNG within one
       level, Gram matrices and colour statistics within 1e-5 of their largest entry; and bad requests,
       each of which must fail with INVALID_ARGUMENT and a message naming the input or limit.
    2. Every warmup request replayed in a TF1 session, as `saved_model_cli run` does (when the export has
       a warmup file and tensorflow-serving-api is installed to read it), against the library likewise.
    """
    export_dir = Path(export_dir)
    settings = read_stylizer_settings(export_dir)
    stylizer = rebuild_stylizer(settings)
    content, style = sample_requests(settings)
    side = np.int32(content.shape[1])
    library = stylizer.transfer(content[0], style[0], settings=settings.transfer_settings(steps=steps, size=None))
    targets = _library_targets(stylizer, settings, style, content)
    run = {"steps": np.int32(steps), "size": np.int32(0)}
    good = [
        ("stylize", {"content": content, "style": style, **run}),
        ("style_targets", {"style": style, "size": side}),
        ("stylize_with_targets", {"content": content, **targets, **run}),
        ("stylize_bytes", {"content_bytes": _png(content), "style_bytes": _png(style), **run}),
    ]
    small = np.zeros((1, settings.min_size - 1, settings.min_size + 4, 3), np.float32)
    thin = np.zeros((1, 2, 4 * content.shape[2], 3), np.float32)  # thinner than the minimum once resized (1 px)
    too_large = np.int32(math.isqrt(settings.max_pixels) + 1)
    bad = [  # (what, signature, inputs, a word the error message must contain)
        ("content below the minimum size", "stylize", {"content": small, "style": style, **run}, "content"),
        ("style thinner than the minimum once resized", "stylize", {"content": content, "style": thin, **run}, "style"),
        ("above max_pixels once resized", "stylize", {"content": content, "style": style, "steps": run["steps"],
                                                      "size": too_large}, "max_pixels"),
        ("steps above max_steps", "stylize", {"content": content, "style": style,
                                              "steps": np.int32(settings.max_steps + 1)}, "max_steps"),
        ("negative steps", "stylize", {"content": content, "style": style, "steps": np.int32(-1)}, "steps"),
        ("a NaN style_weight", "stylize", {"content": content, "style": style, **run,
                                           "style_weight": np.float32("nan")}, "style_weight"),
        ("a negative tv_weight", "stylize", {"content": content, "style": style, **run, "tv_weight": np.float32(-1)},
         "tv_weight"),
        ("learning_rate 0", "stylize", {"content": content, "style": style, **run, "learning_rate": np.float32(0)},
         "learning_rate"),
        ("two content images", "stylize", {"content": np.concatenate([content, content]), "style": style, **run},
         "one image"),
        ("undecodable bytes", "stylize_bytes", {"content_bytes": b"not an image", "style_bytes": _png(style), **run},
         "image file format"),
        ("non-finite Gram matrices", "stylize_with_targets", {"content": content, **run, **{
            name: np.full_like(gram, np.inf) for name, gram in targets.items()}}, "finite"),
        ("targets for another number of scales", "stylize_with_targets",
         {"content": content, **run, **{name: np.concatenate([value] * 3) for name, value in targets.items()}}, "scale"),
        ("ring_grams of the wrong length", "stylize_with_targets",
         {"content": content, **run, **targets, RING_GRAMS: targets[RING_GRAMS][:, :-1]}, RING_GRAMS),
    ]
    replies = run_with_c_api(export_dir, [*good, *((name, inputs) for _, name, inputs, _ in bad)])
    loader = "C API (TF Serving loader)"
    for (signature, _), reply in zip(good, replies):
        if reply.code != 0:
            raise StyleKerasError(f"{signature} via the C API failed: {reply.message}")
    results = _compare(dict(zip([signature for signature, _ in good], (reply.outputs for reply in replies))),
                       library.image, targets, loader)
    results += [StylizerCheck(signature, loader, what, refused=reply.code == 3 and word in reply.message)  # INVALID_ARGUMENT
                for (what, signature, _, word), reply in zip(bad, replies[len(good):])]
    if (export_dir / WARMUP_FILE).exists() and serving_api_installed():
        results += _check_warmup_replay(export_dir, stylizer, settings, content, style, targets)
    return results


def _compare(outputs: dict[str, dict], image: np.ndarray, targets: dict[str, np.ndarray], loader: str) -> list[StylizerCheck]:
    """Each signature's answer against the library's image and style targets (Gram matrices, colours)."""
    results = []
    for signature, answer in outputs.items():
        if signature == "style_targets":
            difference = max(_relative_difference(answer[name], value) for name, value in targets.items())
            results.append(StylizerCheck(signature, loader, "Gram matrices, colours and detail, relative", difference, 1e-5))
        elif signature == "stylize_bytes":
            pixels = decode_image(answer["image_png"]).numpy()
            difference = float(np.max(np.abs(np.round(pixels * 255) - np.round(np.clip(image, 0, 1) * 255))))
            results.append(StylizerCheck(signature, loader, "PNG, in 8-bit levels", difference, 1.0))
        else:
            results.append(StylizerCheck(signature, loader, "image", float(np.max(np.abs(answer["image"][0] - image))),
                                         IMAGE_TOLERANCE))
    return results


def _relative_difference(answer: np.ndarray, expected: np.ndarray) -> float:
    """The largest difference relative to `expected`'s largest entry, NaN (the first scale's detail energy)
    only where `expected` has it; infinite for another shape."""
    answer, expected = np.asarray(answer), np.asarray(expected)
    if answer.shape != expected.shape or not np.array_equal(np.isnan(answer), np.isnan(expected)):
        return float("inf")
    known = ~np.isnan(expected)
    return float(np.max(np.abs(answer[known] - expected[known]), initial=0.0) / np.max(np.abs(expected[known]), initial=1e-30))


def _check_warmup_replay(export_dir: Path, stylizer: Stylizer, settings: StylizerExportSettings, content: np.ndarray,
                         style: np.ndarray, targets: dict[str, np.ndarray]) -> list[StylizerCheck]:
    """The warmup requests (made from `sample_requests`' content and style) against the library."""
    outputs = {name: answer for name, _, answer in replay_warmup(export_dir)}
    library = stylizer.transfer(content[0], style[0], settings=settings.transfer_settings(steps=WARMUP_STEPS, size=None))
    return _compare(outputs, library.image, targets, "warmup replay (TF1 session)")


def _library_targets(stylizer: Stylizer, settings: StylizerExportSettings, style: np.ndarray, content: np.ndarray
                     ) -> dict[str, np.ndarray]:
    """What `style_targets` returns for a result of `content`'s size, as the library takes them: at each of
    the run's scales, from the style resized to that scale's longer side (never enlarged), its Gram matrices,
    colour statistics, ring shares, ring Gram matrices, detail energy and colour sample, one row a scale."""
    sizes = settings.transfer_settings(size=None).sizes(max(content.shape[1:3]))
    rows = []
    for index, size in enumerate(sizes):
        resized = resize_longer_side(style[0], style_size(style[0].shape, size))
        mean, covariance = color.color_statistics([resized])
        energy = detail_energy(resized[None], sizes[index - 1] / size) if index else float("nan")
        rows.append({**{name: value.numpy()[0] for name, value in _flattened(stylizer.style_grams(resized)).items()},
                     "color_mean": mean.numpy(), "color_covariance": covariance.numpy(), DETAIL_ENERGY: np.float64(energy),
                     COLOR_SAMPLE: color.painting_sample([resized], seed=settings.transfer_settings().seed).numpy()})
    return {name: np.stack([row[name] for row in rows]) for name in rows[0]}


def _flattened(style: StyleGrams) -> dict[str, tf.Tensor]:
    """`StyleGrams` as `style_targets` returns them: each Gram matrix under its layer's name, the ring shares
    as one [1, layers] tensor and the ring Gram matrices flattened and joined in layer order, [1, Σ N²]."""
    return {**style.grams, RING_SHARES: tf.stack(list(style.ring_shares.values()))[None],
            RING_GRAMS: tf.concat([tf.reshape(gram, [1, -1]) for gram in style.ring_grams.values()], axis=1)}
