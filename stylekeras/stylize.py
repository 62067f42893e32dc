"""The optimization: a `tf.Variable` image moved by Adam to minimize α·content + β·style + γ·tv.

`Stylizer` builds the feature model once and stylizes any number of images; `transfer` is the one-call
form. Both accept paths, PIL images, arrays or tensors and return a `StyleResult`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from stylekeras import losses
from stylekeras.errors import StyleKerasError
from stylekeras.features import (
    DEFAULT_CONTENT_LAYERS,
    DEFAULT_STYLE_LAYERS,
    build_feature_model,
    check_layers,
    min_input_size,
)
from stylekeras.image_io import ImageSource, load_image
from stylekeras.weights import resolve_weights

INITS = ("content", "noise", "style")

# Defaults tuned on examples/ with both ImageNet-VGG19 and hed-VGG16 weights at 256–512 px (see README):
# with Adam only the ratios α : β : γ matter, and these give strong texture with recognisable content.
DEFAULT_SIZE = 512
DEFAULT_STEPS = 300
DEFAULT_CONTENT_WEIGHT = 1.0
DEFAULT_STYLE_WEIGHT = 1e4
DEFAULT_TV_WEIGHT = 1e2
DEFAULT_LEARNING_RATE = 0.02

LOSS_NAMES = ("total", "content", "style", "tv")


@dataclass(frozen=True)
class StepReport:
    """What a per-step callback sees: the step just done (1-based), the losses before it, the image after it."""

    step: int
    steps: int
    losses: dict[str, float]
    image: tf.Tensor


@dataclass
class StyleResult:
    """The stylized H×W×3 image in [0, 1], the per-step loss history and how the run ended."""

    image: np.ndarray
    history: dict[str, np.ndarray]
    steps_done: int
    seconds: float
    device: str
    weights: str
    stop_reason: str | None = None


StepCallback = Callable[[StepReport], None]


class Stylizer:
    """A VGG feature model plus the loss layers, built once and reused for every image.

    >>> stylizer = Stylizer(weights="hed")
    >>> result = stylizer.transfer("photo.jpg", "painting.jpg", size=256, steps=100)
    """

    def __init__(
        self,
        backbone: str | None = None,
        weights: str = "auto",
        style_layers: Sequence[str] = DEFAULT_STYLE_LAYERS,
        content_layers: Sequence[str] = DEFAULT_CONTENT_LAYERS,
        style_layer_weights: Sequence[float] | None = None,
        seed: int = 0,
    ) -> None:
        self.weights = resolve_weights(weights, backbone, seed)
        check_layers(self.weights.backbone, style_layers, "style layers")
        check_layers(self.weights.backbone, content_layers, "content layers")
        self.style_layers = tuple(style_layers)
        self.content_layers = tuple(content_layers)
        self.style_layer_weights = _layer_weights(self.style_layers, style_layer_weights)
        self.min_size = min_input_size(self.style_layers + self.content_layers)
        self.model = build_feature_model(self.weights, list(dict.fromkeys(self.style_layers + self.content_layers)))

    def transfer(
        self,
        content: ImageSource,
        style: ImageSource,
        *,
        size: int | None = DEFAULT_SIZE,
        steps: int = DEFAULT_STEPS,
        content_weight: float = DEFAULT_CONTENT_WEIGHT,
        style_weight: float = DEFAULT_STYLE_WEIGHT,
        tv_weight: float = DEFAULT_TV_WEIGHT,
        learning_rate: float = DEFAULT_LEARNING_RATE,
        init: str = "content",
        seed: int = 0,
        callback: StepCallback | None = None,
    ) -> StyleResult:
        """Stylize `content` with the style of `style`; `size` is the output's longer side (None: as is)."""
        check_settings(steps=steps, content_weight=content_weight, style_weight=style_weight,
                       tv_weight=tv_weight, learning_rate=learning_rate, init=init, size=size)
        content_pixels = self.checked_image(content, size, "content image")
        style_pixels = self.checked_image(style, size, "style image")
        content_targets, style_targets = self.targets(content_pixels, style_pixels)
        image = tf.Variable(initial_image(init, content_pixels, style_pixels, seed)[None], name="image")
        loop = _Optimization(self, image, content_targets, style_targets,
                             (content_weight, style_weight, tv_weight), learning_rate)
        return loop.run(steps, callback)

    def checked_image(self, source: ImageSource, size: int | None, label: str) -> np.ndarray:
        """Load an image and check it is large enough for the deepest layer used."""
        pixels = load_image(source, size, label)
        height, width = pixels.shape[:2]
        if min(height, width) < self.min_size:
            raise StyleKerasError(
                f"{label} is {width}×{height} px after resizing; the layers used need at least "
                f"{self.min_size} px on each side (use a larger --size or shallower layers)"
            )
        return pixels

    def targets(self, content: np.ndarray, style: np.ndarray) -> tuple[dict[str, tf.Tensor], dict[str, tf.Tensor]]:
        """The content image's feature maps and the style image's normalized Gram matrices, computed once."""
        content_features = self.model(content[None], training=False)
        style_features = self.model(style[None], training=False)
        content_targets = {name: content_features[name] for name in self.content_layers}
        style_targets = {name: losses.normalized_gram(style_features[name]) for name in self.style_layers}
        return content_targets, style_targets

    def loss_parts(
        self, images: tf.Tensor, content_targets: Mapping[str, tf.Tensor], style_targets: Mapping[str, tf.Tensor]
    ) -> dict[str, tf.Tensor]:
        """The unweighted content, style and total-variation losses of `images`."""
        features = self.model(images, training=False)
        content = tf.add_n([losses.content_loss(features[name], content_targets[name]) for name in content_targets])
        return {
            "content": content,
            "style": losses.style_loss(features, style_targets, self.style_layer_weights),
            "tv": losses.total_variation_loss(images),
        }


class _Optimization:
    """One run: the image variable, its Adam state and the compiled step."""

    def __init__(self, stylizer, image, content_targets, style_targets, loss_weights, learning_rate):
        self.stylizer = stylizer
        self.image = image
        self.content_targets = content_targets
        self.style_targets = style_targets
        self.loss_weights = loss_weights
        self.optimizer = keras.optimizers.Adam(learning_rate=learning_rate)
        self.optimizer.build([image])

    @tf.function
    def step(self) -> tuple[tf.Tensor, dict[str, tf.Tensor], tf.Tensor]:
        with tf.GradientTape() as tape:
            parts = self.stylizer.loss_parts(self.image, self.content_targets, self.style_targets)
            total = losses.total_loss(parts["content"], parts["style"], parts["tv"], *self.loss_weights)
        gradient = tape.gradient(total, self.image)
        # A non-finite loss or gradient must not reach the image: the last good image is kept.
        finite = tf.math.is_finite(total) & tf.reduce_all(tf.math.is_finite(gradient))
        if finite:
            self.optimizer.apply_gradients([(gradient, self.image)])
            self.image.assign(tf.clip_by_value(self.image, 0.0, 1.0))
        return total, parts, finite

    def run(self, steps: int, callback: StepCallback | None) -> StyleResult:
        history = {name: [] for name in LOSS_NAMES}
        stop_reason = None
        started = time.perf_counter()
        done = 0
        try:
            for done in range(1, steps + 1):
                total, parts, finite = self.step()
                values = {"total": float(total), **{name: float(value) for name, value in parts.items()}}
                if not finite:
                    stop_reason = _non_finite_reason(done, values, self.loss_weights)
                    done -= 1
                    break
                for name in LOSS_NAMES:
                    history[name].append(values[name])
                if callback is not None:
                    callback(StepReport(done, steps, values, self.image[0]))
        except KeyboardInterrupt:
            stop_reason = f"interrupted after step {done - 1} of {steps}"
            done -= 1
        return StyleResult(
            image=self.image[0].numpy(),
            history={name: np.asarray(values) for name, values in history.items()},
            steps_done=max(done, 0),
            seconds=time.perf_counter() - started,
            device=self.image.device,
            weights=self.stylizer.weights.description,
            stop_reason=stop_reason,
        )


def transfer(
    content: ImageSource,
    style: ImageSource,
    *,
    backbone: str | None = None,
    weights: str = "auto",
    style_layers: Sequence[str] = DEFAULT_STYLE_LAYERS,
    content_layers: Sequence[str] = DEFAULT_CONTENT_LAYERS,
    style_layer_weights: Sequence[float] | None = None,
    seed: int = 0,
    **options,
) -> StyleResult:
    """One-call style transfer: build a `Stylizer` and run `Stylizer.transfer(content, style, **options)`."""
    stylizer = Stylizer(backbone, weights, style_layers, content_layers, style_layer_weights, seed)
    return stylizer.transfer(content, style, seed=seed, **options)


def initial_image(init: str, content: np.ndarray, style: np.ndarray, seed: int) -> np.ndarray:
    """The starting point: the content image, uniform noise (seeded) or the style image at content size."""
    if init == "content":
        return content
    if init == "noise":
        return np.random.default_rng(seed).uniform(0.0, 1.0, content.shape).astype(np.float32)
    if init == "style":
        return tf.image.resize(style, content.shape[:2], method="bilinear", antialias=True).numpy()
    raise StyleKerasError(f"--init '{init}' is not one of {', '.join(INITS)}")


def check_settings(**settings) -> None:
    """Reject negative steps or weights, a non-positive learning rate or size, or an unknown init."""
    for name in ("steps", "content_weight", "style_weight", "tv_weight"):
        value = settings[name]
        if not math.isfinite(value) or value < 0:
            raise StyleKerasError(f"--{name.replace('_', '-')} must be a finite number ≥ 0, got {value}")
    if not math.isfinite(settings["learning_rate"]) or settings["learning_rate"] <= 0:
        raise StyleKerasError(f"--learning-rate must be > 0, got {settings['learning_rate']}")
    if settings["size"] is not None and settings["size"] < 1:
        raise StyleKerasError(f"--size must be ≥ 1 px, got {settings['size']}")
    if settings["init"] not in INITS:
        raise StyleKerasError(f"--init '{settings['init']}' is not one of {', '.join(INITS)}")


def _layer_weights(layers: tuple[str, ...], weights: Sequence[float] | None) -> dict[str, float]:
    if weights is None:
        return {name: 1.0 / len(layers) for name in layers}
    if len(weights) != len(layers):
        raise StyleKerasError(f"--style-layer-weights: {len(weights)} weights for {len(layers)} style layers")
    if any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
        raise StyleKerasError("--style-layer-weights must be ≥ 0 and not all zero")
    return {name: float(weight) for name, weight in zip(layers, weights)}


def _non_finite_reason(step: int, values: dict[str, float], loss_weights: tuple[float, float, float]) -> str:
    float32_max = float(np.finfo(np.float32).max)
    weighted = dict(zip(("content", "style", "tv"), (values[name] * weight for name, weight in
                                                     zip(("content", "style", "tv"), loss_weights))))
    culprits = [name for name, value in weighted.items() if not abs(value) <= float32_max] or ["total"]
    return (
        f"the {' and '.join(culprits)} loss became {values['total']} at step {step}; stopped and kept the image "
        f"from step {step - 1}. Try smaller loss weights or a smaller --learning-rate"
    )
