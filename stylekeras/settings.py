"""The settings of one run, `TransferSettings`, validated where they are made: a module without TensorFlow,
so the command checks its options before it loads TensorFlow."""

from __future__ import annotations

import math
from dataclasses import dataclass

from stylekeras.defaults import (
    COLOR_MODES,
    DEFAULT_CONTENT_WEIGHT,
    DEFAULT_INIT,
    DEFAULT_LBFGS_HISTORY,
    DEFAULT_LBFGS_LEARNING_RATE,
    DEFAULT_LEARNING_RATE,
    DEFAULT_MIN_IMPROVEMENT,
    DEFAULT_OPTIMIZER,
    DEFAULT_SCALES,
    DEFAULT_SIZE,
    DEFAULT_STEPS,
    DEFAULT_STYLE_NORMALIZATION,
    DEFAULT_STYLE_WEIGHTS,
    DEFAULT_TILE_MARGIN,
    DEFAULT_TV_WEIGHT,
    INITS,
    MIN_START_SIZE,
    OPTIMIZERS,
    STYLE_NORMALIZATIONS,
)
from stylekeras.errors import StyleKerasError, check_choice


@dataclass(frozen=True)
class TransferSettings:
    """Every knob of one run; `Stylizer.transfer(**settings)` takes these as keyword arguments.

    size: the output's longer side (None: the content image's own size). steps: at the first scale; each
    finer scale runs half as many (it starts from the scale before, upsampled, with the photo's finer detail:
    `stylize.finer_start`). min_improvement: a scale stops before its steps are done once its loss has
    fallen by less than this fraction over its last `FLAT_WINDOW` steps (0: never; `stylize.loss_flattened`).
    learning_rate: None picks the optimizer's default (Adam 0.02, L-BFGS 1). init: where the first scale
    starts (`stylize.initial_image`): "transport", "palette", "content", "noise" or "style".
    scales/start_size: coarse-to-fine, sizes from `start_size` up to `size`, each starting from the previous
    result upsampled (`stylize.finer_start`) and with targets re-extracted. By default (`scales` None) the
    first scale is 256 px (`MIN_START_SIZE`) and each is at most twice the one before, so every output is
    composed at 256 px and looks the same at every `size`; one scale at 256 px and below. With `scales` and
    no `start_size` the sizes halve from `size`, leaving out those below 256 px.
    average: decay of an exponential moving average of the image (e.g. 0.99), returned instead of the
    last iterate. style_blend: one weight per style image. style_scale: the style image's longer side
    relative to the output's at each scale (None: the output's, or the style's own when smaller, since
    enlarging a painting only blurs its strokes: `stylize.style_size`). preserve_color: "luminance" or
    "histogram". style_weight: β (None: the normalization's default, `DEFAULT_STYLE_WEIGHTS`).
    style_normalization: "balanced" (each layer's loss relative to its target's squared norm and measured
    in units of the content features' mean square, so one β suits every layer, photo and network) or
    "paper" (eq. 4 as written; β then depends on the network).
    tile: optimize images larger than `tile` + 2·`tile_margin` px tile by tile (memory bounded by the
    tile, style statistics still global; see `stylekeras.tiling`); both are rounded up to a multiple of
    the deepest layer's stride.
    """

    size: int | None = DEFAULT_SIZE
    steps: int = DEFAULT_STEPS
    min_improvement: float = DEFAULT_MIN_IMPROVEMENT
    content_weight: float = DEFAULT_CONTENT_WEIGHT
    style_weight: float | None = None
    tv_weight: float = DEFAULT_TV_WEIGHT
    learning_rate: float | None = None
    optimizer: str = DEFAULT_OPTIMIZER
    lbfgs_history: int = DEFAULT_LBFGS_HISTORY
    init: str = DEFAULT_INIT
    seed: int = 0
    scales: int | None = DEFAULT_SCALES
    start_size: int | None = None
    average: float | None = None
    style_blend: tuple[float, ...] | None = None
    style_scale: float | None = None
    preserve_color: str | None = None
    style_normalization: str = DEFAULT_STYLE_NORMALIZATION
    tile: int | None = None
    tile_margin: int = DEFAULT_TILE_MARGIN

    def __post_init__(self) -> None:
        for name in ("steps", "content_weight", "style_weight", "tv_weight"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise StyleKerasError(f"`{name}` must be a finite number ≥ 0, got {value}")
        if not 0 <= self.min_improvement < 1:
            raise StyleKerasError(f"`min_improvement` must be in [0, 1), got {self.min_improvement}")
        if self.learning_rate is not None and not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise StyleKerasError(f"`learning_rate` must be > 0, got {self.learning_rate}")
        for name, choices in (("init", INITS), ("optimizer", OPTIMIZERS), ("style_normalization", STYLE_NORMALIZATIONS)):
            check_choice(f"`{name}`", getattr(self, name), choices)
        if self.preserve_color is not None:
            check_choice("`preserve_color`", self.preserve_color, COLOR_MODES)
        if self.style_weight is None:  # resolved here, so reports and checkpoints name the β that was used
            object.__setattr__(self, "style_weight", DEFAULT_STYLE_WEIGHTS[self.style_normalization])
        if self.size is not None and self.size < 1:
            raise StyleKerasError(f"`size` must be ≥ 1 px, got {self.size}")
        if self.seed < 0:
            raise StyleKerasError(f"`seed` must be ≥ 0, got {self.seed}")
        if self.tile is not None and self.tile < 1:
            raise StyleKerasError(f"`tile` must be ≥ 1 px, got {self.tile}")
        if self.tile_margin < 0:
            raise StyleKerasError(f"`tile_margin` must be ≥ 0 px, got {self.tile_margin}")
        if (self.scales is not None and self.scales < 1) or self.lbfgs_history < 1:
            raise StyleKerasError("`scales` and `lbfgs_history` must be ≥ 1")
        if self.start_size is not None and (self.start_size < 1 or (self.size and self.start_size > self.size)):
            raise StyleKerasError(f"`start_size={self.start_size}` must be between 1 and `size={self.size}`")
        if self.average is not None and not 0 <= self.average < 1:
            raise StyleKerasError(f"`average` must be in [0, 1), got {self.average}")
        if self.style_scale is not None and not (math.isfinite(self.style_scale) and self.style_scale > 0):
            raise StyleKerasError(f"`style_scale` must be > 0, got {self.style_scale}")
        if self.style_blend is not None and (
            any(not math.isfinite(w) or w < 0 for w in self.style_blend) or sum(self.style_blend) <= 0
        ):
            raise StyleKerasError("`style_blend` weights must be ≥ 0 with a positive sum")

    @property
    def optimizer_learning_rate(self) -> float:
        """The learning rate the optimizer runs with: `learning_rate`, or the optimizer's default."""
        return self.learning_rate or (DEFAULT_LBFGS_LEARNING_RATE if self.optimizer == "lbfgs" else DEFAULT_LEARNING_RATE)

    def loss_weights(self, height: int, width: int) -> tuple[float, float, float]:
        """(α, β, γ) for an image of `height`×`width` px (`objective.size_scaled_loss_weights`)."""
        from stylekeras.objective import size_scaled_loss_weights  # TensorFlow's module: only a run needs weights

        return size_scaled_loss_weights((self.content_weight, self.style_weight, self.tv_weight), height * width)

    def sizes(self, full_size: int) -> list[int]:
        """The longer side at each scale, coarse to fine (geometric spacing). By default from `start_size` or
        `MIN_START_SIZE`, each at most twice the one before; with `scales` and no `start_size` the sizes
        halve from `size` and a scale below `MIN_START_SIZE` is left out: smaller outputs get fewer scales."""
        size = self.size or full_size
        if self.scales is None:
            start, scales = min(self.start_size or MIN_START_SIZE, size), 1
            while start * 2 ** (scales - 1) < size:
                scales += 1
        elif self.start_size is None:
            scales = 1
            while scales < self.scales and size / 2**scales >= MIN_START_SIZE:
                scales += 1
            start = round(size / 2 ** (scales - 1))
        else:
            scales, start = self.scales, self.start_size
        if scales == 1:
            return [size]
        return [round(start * (size / start) ** (i / (scales - 1))) for i in range(scales)]

    def scale_steps(self, full_size: int) -> list[int]:
        """The steps at each scale of `sizes(full_size)`: `steps` at the first, half as many at each finer one
        (halving again at each would leave a 1024 px output's finest scale too few to restore its contrast)."""
        finer = max(1, self.steps // 2) if self.steps else 0
        return [self.steps] + [finer] * (len(self.sizes(full_size)) - 1)
