"""Export the feature extractor as a TensorFlow Serving SavedModel: `<base>/<name>/<version>/`.

Written with Keras 3's `ExportArchive` (not `tf.saved_model.save`, whose Keras 3 exports load in Python
but fail in TF Serving's C++ loader), with three signatures:

- `serving_default`: `images` float32 [batch, height, width, 3], RGB in [0, 1] → one output per layer;
- `serving_bytes`: `image_bytes` string [batch] of encoded JPEG/PNG → the same outputs;
- `gram`: `images` → each layer's Gram matrix divided by the number of positions, [batch, C, C],
  the same size for every image size (a style descriptor for search and deduplication).

The version folder appears atomically (written under a hidden temporary name, then renamed), so a TF
Serving polling the base path never loads a half-written version.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType

import keras
import numpy as np
import tensorflow as tf

from stylekeras import losses
from stylekeras.atomic import atomic_write, writable_directory
from stylekeras.defaults import DEFAULT_EXPORT_LAYERS, DEFAULT_EXPORT_PATH
from stylekeras.errors import StyleKerasError
from stylekeras.features import build_feature_model, check_layers, min_input_size
from stylekeras.weights import resolve_weights

SETTINGS_FILE = "assets.extra/stylekeras.json"
WARMUP_FILE = "assets.extra/tf_serving_warmup_requests"
SIGNATURES = ("serving_default", "serving_bytes", "gram")
# The numeric input dtypes `run_with_c_api` feeds, by their DataType numbers in a SignatureDef.
TENSOR_TYPES = {1: "float32", 2: "float64", 3: "int32"}


@dataclass(frozen=True)
class ExportSettings:
    """What an export was made from, stored beside it so `check_export` can rebuild the same model."""

    name: str
    backbone: str
    weights: str
    layers: tuple[str, ...]
    seed: int
    min_size: int


def export_feature_extractor(
    base_path: str | os.PathLike = DEFAULT_EXPORT_PATH,
    *,
    name: str | None = None,
    version: int | None = None,
    overwrite: bool = False,
    backbone: str | None = None,
    weights: str = "auto",
    layers: Sequence[str] = DEFAULT_EXPORT_LAYERS,
    seed: int = 0,
) -> Path:
    """Write a TF-Serving-ready SavedModel of the VGG feature extractor and return its version folder.

    `version` defaults to one more than the highest existing version; an existing version is only
    replaced with `overwrite=True`.
    """
    check_version(version)
    vgg_weights = resolve_weights(weights, backbone, seed)
    layers = tuple(dict.fromkeys(layers))
    check_layers(vgg_weights.backbone, layers, "`layers`")
    settings = ExportSettings(
        name=name or f"{vgg_weights.backbone}_features",
        backbone=vgg_weights.backbone,
        weights=weights if weights != "auto" else vgg_weights.source,
        layers=layers,
        seed=seed,
        min_size=min_input_size(layers),
    )
    model = build_feature_model(vgg_weights, layers)
    return write_version(Path(base_path), settings.name, version, overwrite,
                         lambda target: _write_saved_model(model, settings, target))


def check_version(version: int | None) -> None:
    if version is not None and version < 1:
        raise StyleKerasError(f"`version` must be ≥ 1, got {version}")


def write_version(base_path: Path, name: str, version: int | None, overwrite: bool, write: Callable[[Path], None]) -> Path:
    """`write(folder)` an export into a hidden folder beside the versions of model `name`, then publish it
    as `version` (see `publish_version`), update `models.config` and return the version folder."""
    model_dir = model_folder(base_path, name)
    if version is not None and (model_dir / str(version)).exists() and not overwrite:
        raise StyleKerasError(f"version {version} of '{name}' exists in {model_dir}; pass `overwrite` to replace it")
    staging = Path(tempfile.mkdtemp(prefix=".partial-", dir=model_dir))
    try:
        staging.chmod(0o755)  # mkdtemp makes it private; TF Serving usually runs as another user
        write(staging)
        final = publish_version(staging, model_dir, version, overwrite)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    write_models_config(base_path)
    return final


def serving_functions(model: keras.Model, min_size: int) -> dict[str, tuple[callable, list[tf.TensorSpec]]]:
    """The three signatures as (function, input signature) pairs around the feature model."""
    image_spec = tf.TensorSpec([None, None, None, 3], tf.float32, name="images")
    bytes_spec = tf.TensorSpec([None], tf.string, name="image_bytes")

    def features(images):
        return model(_checked_size(images, min_size), training=False)

    def gram(images):
        return {name: losses.normalized_gram(value) for name, value in features(images).items()}

    def features_from_bytes(image_bytes):
        images = tf.map_fn(decode_image, image_bytes, fn_output_signature=tf.TensorSpec([None, None, 3], tf.float32))
        return features(images)

    return {
        "serving_default": (features, [image_spec]),
        "serving_bytes": (features_from_bytes, [bytes_spec]),
        "gram": (gram, [image_spec]),
    }


def decode_image(encoded: tf.Tensor) -> tf.Tensor:
    """One encoded JPEG/PNG/GIF/BMP → float32 H×W×3 RGB in [0, 1] (first frame of an animation), the bits
    `image_io.load_image` gives for 8-bit images (EXIF orientation aside): JPEGs decoded as Pillow decodes them
    (libjpeg's accurate integer DCT, fancy upsampling), each level divided by 255. A served stylizer then starts
    where the CLI does: the transport start moves pixels at ties in the colours by whole levels when an
    input moves by its last bit."""
    # Each level looked up, not divided: a graph's optimizer turns x / 255 into x * (1 / 255), a bit off.
    levels = tf.constant(np.arange(256, dtype=np.float32) / np.float32(255))
    pixels = tf.cond(tf.io.is_jpeg(encoded),
                     lambda: tf.io.decode_jpeg(encoded, channels=3, dct_method="INTEGER_ACCURATE"),
                     lambda: tf.io.decode_image(encoded, channels=3, expand_animations=False))
    return tf.gather(levels, tf.cast(pixels, tf.int32))


def read_settings(export_dir: str | os.PathLike) -> ExportSettings:
    """The settings an export was made with (from its `assets.extra/stylekeras.json`)."""
    path = Path(export_dir) / SETTINGS_FILE
    if not path.is_file():
        raise StyleKerasError(f"'{export_dir}' is not a stylekeras export (no {SETTINGS_FILE})")
    values = json.loads(path.read_text())
    return ExportSettings(**{**values, "layers": tuple(values["layers"])})


def rebuild_model(settings: ExportSettings) -> keras.Model:
    """The in-process Keras feature model an export was made from."""
    return build_feature_model(resolve_weights(settings.weights, settings.backbone, settings.seed), settings.layers)


def latest_version(base_path: str | os.PathLike, name: str) -> Path:
    """The highest-numbered version folder of model `name`."""
    versions = _versions(Path(base_path) / name)
    if not versions:
        raise StyleKerasError(f"no exported versions of '{name}' in {base_path}; run `stylekeras export` first")
    return Path(base_path) / name / str(max(versions))


def only_model_name(base_path: str | os.PathLike) -> str:
    """The name of the one exported model under `base_path` (an error if there are none or several)."""
    names = sorted(entry.name for entry in Path(base_path).glob("*/") if _versions(entry))
    if len(names) != 1:
        found = ", ".join(names) if names else "none"
        raise StyleKerasError(f"{len(names) or 'no'} exported models in {base_path} ({found}); pass `name`")
    return names[0]


def write_models_config(base_path: Path, mount: str = "/models") -> Path:
    """A TF Serving `--model_config_file` listing every model under `base_path`, as mounted at `mount`."""
    entries = [
        f'  config {{\n    name: "{model.name}"\n    base_path: "{mount}/{model.name}"\n    model_platform: "tensorflow"\n  }}'
        for model in sorted(base_path.iterdir())
        if model.is_dir() and _versions(model)
    ]
    text = "model_config_list {\n" + "\n".join(entries) + "\n}\n"
    path = base_path / "models.config"
    with atomic_write(path) as stream:
        stream.write(text.encode())
    return path


def _checked_size(images: tf.Tensor, min_size: int) -> tf.Tensor:
    """Images smaller than the deepest layer allows get InvalidArgument, not an empty feature map."""
    shape = tf.shape(images)
    check = tf.debugging.assert_greater_equal(
        tf.minimum(shape[1], shape[2]), min_size,
        message=f"images must be at least {min_size}×{min_size} pixels for these layers",
    )
    with tf.control_dependencies([check]):
        return tf.identity(images)


def model_folder(base_path: Path, name: str) -> Path:
    """`base_path/name`, created if needed; `name` must be a plain folder name."""
    if not name or "/" in name or name.startswith("."):
        raise StyleKerasError(f"`name='{name}'` must be a plain folder name")
    return writable_directory(base_path / name, "`base_path`")


def _versions(model_dir: Path) -> list[int]:
    if not model_dir.is_dir():
        return []
    return [int(entry.name) for entry in model_dir.iterdir() if entry.name.isdigit() and entry.is_dir()]


def _write_saved_model(model: keras.Model, settings: ExportSettings, target: Path) -> None:
    archive = keras.export.ExportArchive()
    # add_endpoint tracks the variables it uses; calling track() too would store them twice.
    for signature, (function, input_signature) in serving_functions(model, settings.min_size).items():
        archive.add_endpoint(signature, function, input_signature=input_signature)
    archive.write_out(str(target), verbose=False)
    (target / "assets.extra").mkdir(exist_ok=True)
    (target / SETTINGS_FILE).write_text(json.dumps(asdict(settings), indent=2))
    if serving_api_installed():  # the warmup file is TF Serving's request protos; the model serves without it
        write_warmup_requests(target / WARMUP_FILE, settings)


def write_warmup_requests(path: Path, settings: ExportSettings) -> None:
    """A TFRecord of PredictionLogs, two small requests per signature, which TF Serving replays at load."""
    predict_pb2, prediction_log_pb2 = serving_apis()
    size = max(settings.min_size, 32)
    rng = np.random.default_rng(0)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for batch in (1, 2):
            images = rng.uniform(0, 1, (batch, size, size, 3)).astype(np.float32)
            encoded = [tf.io.encode_png(tf.image.convert_image_dtype(image, tf.uint8)).numpy() for image in images]
            for signature, key, value in (
                ("serving_default", "images", images),
                ("gram", "images", images),
                ("serving_bytes", "image_bytes", np.array(encoded, dtype=object)),
            ):
                request = predict_pb2.PredictRequest()
                request.model_spec.name = settings.name
                request.model_spec.signature_name = signature
                request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
                log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
                writer.write(log.SerializeToString())


def publish_version(staging: Path, model_dir: Path, version: int | None, overwrite: bool) -> Path:
    """Rename the finished export in `staging` into place as `model_dir/version` (default: one more than the
    highest), under a lock so concurrent exporters get distinct versions."""
    with _locked(model_dir):
        target = model_dir / str(version if version is not None else max(_versions(model_dir), default=0) + 1)
        if target.exists():
            if not overwrite:
                raise StyleKerasError(f"version {target.name} of '{model_dir.name}' exists; pass `overwrite` to replace it")
            retired = Path(tempfile.mkdtemp(prefix=".retired-", dir=model_dir))
            os.replace(target, retired / "old")
            os.replace(staging, target)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, target)
    return target


@contextlib.contextmanager
def _locked(model_dir: Path):
    with open(model_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@dataclass(frozen=True)
class CheckResult:
    """One signature checked one way: the largest difference from the in-process Keras model."""

    signature: str
    loader: str
    max_abs_diff: float
    max_activation: float

    @property
    def passed(self) -> bool:
        return self.max_abs_diff <= CHECK_TOLERANCE * self.max_activation

    def __str__(self) -> str:
        verdict = "ok" if self.passed else "FAILED"
        return (f"{self.signature:<16} {self.loader:<26} max |diff| {self.max_abs_diff:.2e} "
                f"(largest activation {self.max_activation:.3g}) {verdict}")


# The acceptance bound: outputs agree with in-process Keras within 1e-5 of the largest activation.
CHECK_TOLERANCE = 1e-5


def check_export(export_dir: str | os.PathLike) -> list[CheckResult]:
    """Prove an export serves what the Keras model computes, through the loaders TF Serving uses.

    1. TensorFlow's C API (`libtensorflow_cc.so.2`: TF_LoadSessionFromSavedModel + TF_SessionRun) in a
       subprocess that does not import TensorFlow's Python package: `serving_default` and `gram`, plus an
       image below the minimum size, which must fail with INVALID_ARGUMENT.
    2. Every warmup request (all three signatures) replayed in a TF1 session, as `saved_model_cli run`
       does (when the export has a warmup file and tensorflow-serving-api is installed to read it).
       Each output is compared with the in-process Keras model on the same decoded pixels.
    """
    export_dir = Path(export_dir)
    settings = read_settings(export_dir)
    model = rebuild_model(settings)
    size = max(settings.min_size, 32)
    # Pixels on the 8-bit grid, so that PNG-encoded copies decode to exactly the same values.
    images = np.round(np.random.default_rng(1).uniform(0, 1, (2, size, size, 3)) * 255).astype(np.float32) / 255
    expected = _keras_outputs(model, images)
    results = _check_with_c_api(export_dir, images, expected, settings.min_size)
    if (export_dir / WARMUP_FILE).exists() and serving_api_installed():
        results += _check_warmup_replay(export_dir, model)
    return results


def _keras_outputs(model: keras.Model, images: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    features = {name: value.numpy() for name, value in model(images, training=False).items()}
    grams = {name: losses.normalized_gram(value).numpy() for name, value in features.items()}
    return {"serving_default": features, "serving_bytes": features, "gram": grams}


def _compare(signature: str, loader: str, got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> CheckResult:
    if set(got) != set(want):
        raise StyleKerasError(f"{signature} via {loader}: outputs {sorted(got)} differ from the layers {sorted(want)}")
    diff = max(float(np.max(np.abs(got[key] - want[key]))) for key in want)
    peak = max(float(np.max(np.abs(want[key]))) for key in want)
    return CheckResult(signature, loader, diff, peak)


def _signature_defs(export_dir: Path):
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((export_dir / "saved_model.pb").read_bytes())
    return saved_model.meta_graphs[0].signature_def


@dataclass(frozen=True)
class CApiReply:
    """What TF_SessionRun answered: a TF status code (0 OK, 3 INVALID_ARGUMENT, …), the outputs (a string
    output as bytes) and how long it took."""

    code: int
    message: str
    outputs: dict[str, np.ndarray | bytes]
    seconds: float = 0.0


CApiInputs = np.ndarray | dict[str, np.ndarray | bytes]


def run_with_c_api(export_dir: str | os.PathLike, requests: Sequence[tuple[str, CApiInputs]]) -> list[CApiReply]:
    """Load `export_dir` with TF_LoadSessionFromSavedModel (tag "serve") and run each (signature, inputs)
    request with TF_SessionRun, in a subprocess that never imports TensorFlow's Python package.

    `inputs` is the images of a one-input signature, or a dict by input key of float32 or int32 arrays and
    scalar strings (bytes); inputs with defaults in the signature may be left out."""
    export_dir = Path(export_dir).resolve()
    signatures = _signature_defs(export_dir)
    with tempfile.TemporaryDirectory() as scratch:
        plan = []
        for index, (signature_name, inputs) in enumerate(requests):
            signature = signatures[signature_name]
            if not isinstance(inputs, dict):
                (key,) = signature.inputs
                inputs = {key: inputs}
            specs = []
            for key, value in inputs.items():
                file = f"{scratch}/{index}_{key}"
                if isinstance(value, bytes):
                    Path(file).write_bytes(value)
                    dtype = "string"
                else:
                    value = np.asarray(value)
                    dtype = TENSOR_TYPES[signature.inputs[key].dtype]  # the signature's, whatever numpy made of it
                    file += ".npy"
                    np.save(file, value.astype(dtype))
                specs.append({"name": signature.inputs[key].name, "dtype": dtype, "file": file})
            plan.append({
                "inputs": specs,
                "outputs": {key: info.name for key, info in signature.outputs.items()},
                "output_file": f"{scratch}/{index}.npz",
            })
        Path(scratch, "plan.json").write_text(json.dumps(plan))
        completed = subprocess.run(
            [sys.executable, str(Path(__file__).with_name("capi_runner.py")), str(_libtensorflow_cc()),
             str(export_dir), f"{scratch}/plan.json"],
            capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        )
        statuses = [json.loads(line) for line in completed.stdout.splitlines() if line.startswith("{")]
        if completed.returncode != 0 or len(statuses) != len(plan):
            detail = statuses[0]["message"] if statuses else (completed.stderr.strip().splitlines() or ["no output"])[-1]
            raise StyleKerasError(f"TensorFlow's C API could not load or run {export_dir}: {detail}")
        replies = []
        for status in statuses:
            outputs = {}
            if status["code"] == 0:
                with np.load(status["output_file"]) as saved:
                    outputs = {key: saved[key].tobytes() if key in status["strings"] else saved[key] for key in saved}
            replies.append(CApiReply(status["code"], status["message"], outputs, status["seconds"]))
    return replies


def _check_with_c_api(export_dir: Path, images: np.ndarray, expected, min_size: int) -> list[CheckResult]:
    requests = [("serving_default", images), ("gram", images)]
    if min_size > 1:
        requests.append(("serving_default", np.zeros((1, min_size - 1, min_size - 1, 3), np.float32)))
    replies = run_with_c_api(export_dir, requests)
    results = []
    for (signature_name, _), reply in zip(requests[:2], replies):
        if reply.code != 0:
            raise StyleKerasError(f"{signature_name} via the C API failed: {reply.message}")
        results.append(_compare(signature_name, "C API (TF Serving loader)", reply.outputs, expected[signature_name]))
    if min_size > 1 and replies[2].code != 3:  # INVALID_ARGUMENT
        raise StyleKerasError(f"an image below {min_size} px was not rejected with InvalidArgument ({replies[2].message})")
    return results


def replay_warmup(export_dir: Path) -> list[tuple[str, dict[str, np.ndarray], dict[str, np.ndarray]]]:
    """Every warmup request of an export run in a TF1 session, as `saved_model_cli run` does:
    (signature name, inputs, outputs) per request."""
    _, prediction_log_pb2 = serving_apis()
    records = [record.numpy() for record in tf.data.TFRecordDataset(str(export_dir / WARMUP_FILE))]
    replies = []
    logger = tf.get_logger()
    level = logger.level
    with tf.compat.v1.Session(graph=tf.Graph()) as session:
        logger.setLevel("ERROR")  # the TF1 loader is deprecated, and that is the point: it is what TF Serving runs
        try:
            meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], str(export_dir))
        finally:
            logger.setLevel(level)
        for record in records:
            request = prediction_log_pb2.PredictionLog.FromString(record).predict_log.request
            signature = meta_graph.signature_def[request.model_spec.signature_name]
            inputs = {key: tf.make_ndarray(value) for key, value in request.inputs.items()}
            keys = list(signature.outputs)
            values = session.run([signature.outputs[key].name for key in keys],
                                 feed_dict={signature.inputs[key].name: value for key, value in inputs.items()})
            replies.append((request.model_spec.signature_name, inputs, dict(zip(keys, values))))
    return replies


def _check_warmup_replay(export_dir: Path, model: keras.Model) -> list[CheckResult]:
    replies = [(name, next(iter(inputs.values())), outputs) for name, inputs, outputs in replay_warmup(export_dir)]
    results = []
    for signature_name, pixels, outputs in replies:
        if pixels.dtype == object:  # encoded images: compare on the pixels they decode to
            pixels = np.stack([decode_image(encoded).numpy() for encoded in pixels])
        want = _keras_outputs(model, pixels)[signature_name]
        results.append(_compare(signature_name, f"warmup replay, batch {len(pixels)}", outputs, want))
    return results


def serving_api_installed() -> bool:
    """Whether TF Serving's request protos (the tensorflow-serving-api package) are importable: they are
    needed to write and replay the warmup file, not to export or serve."""
    return importlib.util.find_spec("tensorflow_serving") is not None


def serving_apis() -> tuple[ModuleType, ModuleType]:
    """TF Serving's request protos (predict_pb2, prediction_log_pb2), from the tensorflow-serving-api package."""
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    return predict_pb2, prediction_log_pb2


def _libtensorflow_cc() -> Path:
    path = Path(tf.__file__).parent / "libtensorflow_cc.so.2"
    if not path.is_file():
        raise StyleKerasError(f"the installed TensorFlow has no {path.name} to check the export with")
    return path
