"""The feature model: a Keras VGG truncated after the deepest layer used, returning named feature maps.

The layer stack follows `keras/src/applications/vgg19.py` (same names, so Keras weights load by name),
with the VGG preprocessing inside the model so callers pass plain RGB in [0, 1].
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from stylekeras.defaults import PADDINGS, POOLINGS, PRECISIONS
from stylekeras.errors import StyleKerasError, check_choice
from stylekeras.weights import VGGWeights

# Conv layers per block in Simonyan & Zisserman's configurations D (VGG16) and E (VGG19).
CONVS_PER_BLOCK = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
BLOCK_FILTERS = (64, 128, 256, 512, 512)

# The Caffe VGG models were trained on BGR images minus these per-channel means (Keras' preprocess_input,
# mode "caffe", in keras/src/applications/imagenet_utils.py).
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)


@keras.saving.register_keras_serializable(package="stylekeras")
class VGGPreprocess(keras.layers.Layer):
    """RGB in [0, 1] → Caffe-style BGR in [0, 255] minus the ImageNet mean."""

    def call(self, images: tf.Tensor) -> tf.Tensor:
        bgr = keras.ops.flip(images * 255.0, axis=-1)
        return bgr - keras.ops.convert_to_tensor(CAFFE_BGR_MEAN, dtype=images.dtype)


@keras.saving.register_keras_serializable(package="stylekeras")
class ScaledAveragePooling(keras.layers.AveragePooling2D):
    """2×2 average pooling times 2: Gatys et al. prefer average pooling, but it shrinks ReLU activations
    relative to the max pooling the network was trained with; crowsonkb/style-transfer-pytorch rescales by
    2 to keep their magnitude (and so the meaning of the loss weights)."""

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        return super().call(inputs) * 2.0


@keras.saving.register_keras_serializable(package="stylekeras")
class EdgePadding(keras.layers.Layer):
    """Pad one pixel on each side by reflection or replication, for the first conv (fewer edge artifacts).

    For a one-pixel border, "symmetric" padding repeats the edge pixel, which is replication.
    """

    def __init__(self, mode: str, **kwargs):
        super().__init__(**kwargs)
        self.mode = mode

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        mode = "reflect" if self.mode == "reflect" else "symmetric"
        return keras.ops.pad(inputs, [[0, 0], [1, 1], [1, 1], [0, 0]], mode=mode)

    def get_config(self) -> dict:
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="stylekeras")
class FlippedKernelConv2D(keras.layers.Conv2D):
    """Keras' Conv2D (stride 1, "same" padding), computed as the transposed convolution of its kernel
    flipped in space with its input and output channels swapped: the same products, summed bit for bit as
    Conv2D sums them by oneDNN's AVX-512 float32 kernels (to float32 rounding by its AVX2 ones), and up to
    twice as fast where the layer has many channels, because oneDNN runs TensorFlow's transposed
    (backward-data) convolution on a kernel it has reordered into its blocked layout and the forward one on
    the kernel as stored (BENCHMARKS.md, "Design choices"). Gradients are Conv2D's."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.padding != "same" or self.strides != (1, 1) or self.dilation_rate != (1, 1):
            raise ValueError("FlippedKernelConv2D computes only stride-1, undilated convolutions with \"same\" padding")

    def convolution_op(self, inputs: tf.Tensor, kernel: keras.Variable) -> tf.Tensor:
        """Keras' hook for the convolution itself (bias and activation follow it in `call`)."""
        return _convolution_as_transposed(inputs, tf.convert_to_tensor(kernel))


@tf.custom_gradient
def _convolution_as_transposed(inputs: tf.Tensor, kernel: tf.Tensor
                               ) -> tuple[tf.Tensor, Callable[[tf.Tensor], tuple[tf.Tensor, tf.Tensor]]]:
    """conv2d(`inputs`, `kernel`), stride 1, "same", as the transposed convolution of the flipped kernel;
    its gradients are those TensorFlow gives conv2d."""
    strides, padding = [1, 1, 1, 1], "SAME"
    flipped = tf.transpose(tf.reverse(kernel, axis=[0, 1]), [0, 1, 3, 2])
    output_shape = tf.concat([tf.shape(inputs)[:3], tf.shape(kernel)[3:]], axis=0)
    outputs = tf.raw_ops.Conv2DBackpropInput(input_sizes=output_shape, filter=flipped, out_backprop=inputs,
                                             strides=strides, padding=padding)

    def gradient(upstream: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return (tf.raw_ops.Conv2DBackpropInput(input_sizes=tf.shape(inputs), filter=kernel, out_backprop=upstream,
                                               strides=strides, padding=padding),
                tf.raw_ops.Conv2DBackpropFilter(input=inputs, filter_sizes=tf.shape(kernel), out_backprop=upstream,
                                                strides=strides, padding=padding))

    return outputs, gradient


def flipped_kernels_pay() -> bool:
    """Whether float32 convolutions run faster as `FlippedKernelConv2D`s here: on an x86 CPU with
    TensorFlow's oneDNN ops on (its default; off with TF_ENABLE_ONEDNN_OPTS=0, when TensorFlow's own
    forward convolution is the faster one), no GPU visible. Measured with oneDNN's AVX2 and AVX-512 kernels
    (BENCHMARKS.md, "Design choices")."""
    if tf.config.list_physical_devices("GPU") or platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:  # TensorFlow's own test of oneDNN, not public API: where it is gone, Keras' Conv2D stays
        from tensorflow.python.util import _pywrap_util_port

        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        return False


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str] | None:
    """The CPU feature flags `cpuinfo` lists (e.g. "avx2", "amx_bf16"), or None when it is unreadable."""
    try:
        return set(cpuinfo.read_text().split())
    except OSError:
        return None


def speed_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """Which of the CPU flags that decide float32 and bfloat16 speed this machine has, e.g. "avx2,
    avx512f", for the timing notes of benchmarks ("unknown" without a readable `cpuinfo`)."""
    flags = cpu_flags(cpuinfo)
    if flags is None:
        return "unknown"
    return ", ".join(flag for flag in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if flag in flags) or "none"


def bfloat16_is_fast(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool | None:
    """Whether `precision="mixed"` pays on this machine: a GPU of compute capability 8.0 or later (Ampere
    on), or a CPU with bfloat16 instructions, AMX-BF16 or AVX512-BF16 (without them, e.g. AVX512F alone,
    bfloat16 is emulated and several times slower: README, "Speed"). None when it cannot tell (no GPU and
    no readable `cpuinfo`)."""
    for gpu in tf.config.list_physical_devices("GPU"):
        if tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0)) >= (8, 0):
            return True
    flags = cpu_flags(cpuinfo)
    return None if flags is None else bool(flags & {"amx_bf16", "avx512_bf16"})


def resolve_precision(precision: str) -> str:
    """The precision a run uses: "auto" becomes "mixed" where `bfloat16_is_fast` finds bfloat16 hardware and
    "float32" elsewhere (also when it cannot tell); "float32" and "mixed" stay as asked."""
    check_choice("`precision`", precision, PRECISIONS)
    if precision != "auto":
        return precision
    return "mixed" if bfloat16_is_fast() else "float32"


def layer_names(backbone: str) -> list[str]:
    """All layer names of a backbone's convolutional part, in order (`block1_conv1`, …, `block5_pool`)."""
    if backbone not in CONVS_PER_BLOCK:
        raise StyleKerasError(f"unknown backbone '{backbone}'; choose one of {', '.join(CONVS_PER_BLOCK)}")
    names = []
    for block, convs in enumerate(CONVS_PER_BLOCK[backbone], start=1):
        names += [f"block{block}_conv{index}" for index in range(1, convs + 1)] + [f"block{block}_pool"]
    return names


def check_layers(backbone: str, layers: Sequence[str], option: str = "`layers`") -> None:
    """Raise a one-line error naming every unknown layer and listing the valid ones."""
    valid = layer_names(backbone)
    unknown = [name for name in layers if name not in valid]
    if unknown:
        raise StyleKerasError(
            f"{option}: unknown layer {', '.join(map(repr, unknown))} for {backbone}; valid: {', '.join(valid)}"
        )
    if not layers:
        raise StyleKerasError(f"{option}: give at least one layer")


def layer_channels(name: str) -> int:
    """The number of feature maps N of layer `name` (its block's filter count)."""
    return BLOCK_FILTERS[int(name[5]) - 1]


def layer_stride(name: str) -> int:
    """How many image pixels one feature-map cell of layer `name` spans (2 per pooling before it)."""
    return 2 ** (int(name[5]) - 1 + name.endswith("_pool"))


def min_input_size(layers: Sequence[str]) -> int:
    """The smallest image side for which every layer still has at least one pixel: the largest stride."""
    return max(layer_stride(name) for name in layers)


def build_feature_model(
    weights: VGGWeights, layers: Sequence[str], pooling: str = "max", padding: str = "zero", precision: str = "float32"
) -> keras.Model:
    """A Keras model mapping RGB images in [0, 1] (any size) to a dict of the named layers' feature maps.

    The network stops after the deepest layer asked for: later layers would cost time and never matter.
    `pooling` is "max" (as trained) or "avg" (rescaled); `padding` of the first conv is "zero" (as
    trained), "reflect" or "replicate". `precision` "mixed" computes the convolutions in bfloat16 (several
    times faster on CPUs with AMX or AVX512-BF16 and on recent GPUs) and returns bfloat16 features, which
    `stylekeras.losses` turn into float32 losses (the Gram matrix's gradient stays in bfloat16); "auto"
    picks one of the two for this machine (`resolve_precision`). In float32, where `flipped_kernels_pay`,
    the convolutions after the first are `FlippedKernelConv2D`s: Keras' numbers, sooner.
    """
    check_layers(weights.backbone, layers)
    check_choice("`pooling`", pooling, POOLINGS)
    check_choice("`padding`", padding, PADDINGS)
    # Kernels stored in bfloat16, not Keras' "mixed_bfloat16" (float32 kept, cast at every call): they are
    # frozen, so the convolutions are the same, without recasting millions of weights per loss evaluation.
    dtype = "bfloat16" if resolve_precision(precision) == "mixed" else "float32"
    flipped_kernels = dtype == "float32" and flipped_kernels_pay()
    all_names = layer_names(weights.backbone)
    deepest = max(all_names.index(name) for name in layers)
    images = keras.Input(shape=(None, None, 3), name="images")
    x = VGGPreprocess(name="vgg_preprocess")(images)
    outputs = {}
    for index, name in enumerate(all_names[: deepest + 1]):
        if name.endswith("_pool"):
            pool = keras.layers.MaxPooling2D if pooling == "max" else ScaledAveragePooling
            x = pool(2, strides=2, name=name, dtype=dtype)(x)
        else:
            edge_padded = index == 0 and padding != "zero"
            if edge_padded:
                x = EdgePadding(padding, name="edge_padding", dtype=dtype)(x)
            # Not the first convolution: the flipped form speeds up many input channels, not 3.
            conv_type = FlippedKernelConv2D if flipped_kernels and index > 0 else keras.layers.Conv2D
            conv = conv_type(
                layer_channels(name),
                3,
                padding="valid" if edge_padded else "same",
                activation="relu",
                # Trained kernels replace it at once: drawing millions of random numbers first cost every start-up.
                kernel_initializer=("zeros" if weights.kernels is not None
                                    else keras.initializers.GlorotUniform(seed=weights.seed + index)),
                name=name,
                dtype=dtype,
            )
            x = conv(x)
            if weights.kernels is not None:
                _set_conv_weights(conv, weights.kernels.get(name), weights)
        if name in layers:
            outputs[name] = x
    return keras.Model(images, outputs, name=f"{weights.backbone}_features")


def layer_shapes(backbone: str, height: int, width: int) -> list[tuple[str, tuple[int, int, int]]]:
    """Each layer's output shape (height, width, channels) for an input of `height`×`width` pixels."""
    shapes, channels = [], 3
    for name in layer_names(backbone):
        if name.endswith("_pool"):
            height, width = height // 2, width // 2
        else:
            channels = layer_channels(name)
        shapes.append((name, (height, width, channels)))
    return shapes


def _set_conv_weights(conv: keras.layers.Conv2D, values: list[np.ndarray] | None, weights: VGGWeights) -> None:
    expected = [tuple(variable.shape) for variable in conv.weights]
    found = [tuple(np.shape(value)) for value in values] if values is not None else None
    if found != expected:
        raise StyleKerasError(
            f"weights '{weights.source}' do not fit {weights.backbone} layer {conv.name}: "
            f"expected shapes {expected}, found {found or 'no such layer'}"
        )
    conv.set_weights(values)
