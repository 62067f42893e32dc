import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from stylekeras import export
from stylekeras.cli import app
from stylekeras.errors import StyleKerasError
from stylekeras.features import build_feature_model
from stylekeras.weights import resolve_weights
from cli_run import runner

ROOT = Path(__file__).parents[1]

LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1")  # needs images ≥ 4 px


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    base = tmp_path_factory.mktemp("saved_models")
    return export.export_feature_extractor(base, weights="hed", layers=LAYERS)


def _entries(folder: Path) -> list[str]:
    return sorted(entry.name for entry in folder.iterdir() if entry.name != ".lock")


def test_export_layout_signatures_and_config(exported):
    assert exported.name == "1" and exported.parent.name == "vgg16_features"
    assert _entries(exported.parent) == ["1"]
    signatures = export._signature_defs(exported)
    assert set(export.SIGNATURES) <= set(signatures)
    for name in export.SIGNATURES:
        assert signatures[name].method_name == "tensorflow/serving/predict"
        assert set(signatures[name].outputs) == set(LAYERS)
        assert all(info.dtype == tf.float32.as_datatype_enum for info in signatures[name].outputs.values())
    assert list(signatures["serving_bytes"].inputs) == ["image_bytes"]
    assert list(signatures["gram"].outputs["block2_conv1"].tensor_shape.dim)[1].size == 128
    config = (exported.parents[1] / "models.config").read_text()
    assert 'name: "vgg16_features"' in config and 'base_path: "/models/vgg16_features"' in config


def test_variables_are_stored_once(exported):
    parameters = sum(np.prod(v.shape) for v in build_feature_model(resolve_weights("random", "vgg16"), LAYERS).weights)
    stored = sum(f.stat().st_size for f in (exported / "variables").iterdir())
    assert parameters * 4 <= stored < parameters * 4 * 1.2


def test_warmup_file_has_requests_for_every_signature(exported):
    from tensorflow_serving.apis import prediction_log_pb2

    records = [prediction_log_pb2.PredictionLog.FromString(r.numpy())
               for r in tf.data.TFRecordDataset(str(exported / export.WARMUP_FILE))]
    signatures = [log.predict_log.request.model_spec.signature_name for log in records]
    assert sorted(set(signatures)) == sorted(export.SIGNATURES) and len(records) == 6


def test_check_passes_through_c_api_and_warmup_replay(exported):
    results = export.check_export(exported)
    assert all(result.passed for result in results)
    seen = {(result.signature, result.loader.split(" ")[0]) for result in results}
    assert {("serving_default", "C"), ("gram", "C"), ("serving_bytes", "warmup")} <= seen
    assert all(result.max_activation > 1.0 for result in results)


def test_check_detects_an_export_that_differs_from_the_keras_model(exported, tmp_path):
    import shutil

    copy = tmp_path / "1"
    shutil.copytree(exported, copy)
    settings = (copy / export.SETTINGS_FILE).read_text().replace('"hed"', '"random"')
    (copy / export.SETTINGS_FILE).write_text(settings)
    assert not all(result.passed for result in export.check_export(copy))


def test_c_api_rejects_tf_saved_model_save_but_loads_ours(exported, tmp_path):
    model = build_feature_model(resolve_weights("random", "vgg16"), ["block1_conv1"])
    tf.saved_model.save(model, str(tmp_path / "plain"))
    image = np.zeros((1, 8, 8, 3), np.float32)
    (plain,) = export.run_with_c_api(tmp_path / "plain", [("serving_default", image)])
    assert plain.code != 0 and "Could not find variable" in plain.message
    (ours,) = export.run_with_c_api(exported, [("serving_default", image)])
    assert ours.code == 0 and ours.outputs["block1_conv1"].shape == (1, 8, 8, 64)


def test_too_small_image_is_invalid_argument(exported):
    (reply,) = export.run_with_c_api(exported, [("serving_default", np.zeros((1, 3, 9, 3), np.float32))])
    assert reply.code == 3 and "at least 4×4" in reply.message


def test_versions_increment_and_existing_versions_are_protected(tmp_path):
    first = export.export_feature_extractor(tmp_path, weights="random", layers=["block1_conv1"])
    second = export.export_feature_extractor(tmp_path, weights="random", layers=["block1_conv1"])
    assert (first.name, second.name) == ("1", "2")
    with pytest.raises(StyleKerasError, match="pass `overwrite`"):
        export.export_feature_extractor(tmp_path, weights="random", layers=["block1_conv1"], version=1)
    replaced = export.export_feature_extractor(tmp_path, weights="random", layers=["block1_conv1", "block1_conv2"],
                                               version=1, overwrite=True)
    assert export.read_settings(replaced).layers == ("block1_conv1", "block1_conv2")
    assert _entries(tmp_path / "vgg19_features") == ["1", "2"]


def test_concurrent_exports_get_distinct_versions(tmp_path):
    command = [sys.executable, str(Path(__file__).parents[1] / "cli.py"), "export", "--base-path", str(tmp_path),
               "--weights", "random", "--layers", "block1_conv1"]
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)]
    assert all(process.wait(timeout=300) == 0 for process in processes)
    assert _entries(tmp_path / "vgg19_features") == ["1", "2", "3"]


def test_cli_export_then_check(tmp_path):
    result = runner.invoke(app, ["export", "--base-path", str(tmp_path), "--weights", "hed", "--layers", "block1_conv1"])
    assert result.exit_code == 0, result.output
    assert "exported" in result.stdout and "vgg16_features/1" in result.stdout
    result = runner.invoke(app, ["export", "--base-path", str(tmp_path), "--check"])
    assert result.exit_code == 0, result.output
    assert "C API (TF Serving loader)" in result.stdout and "every signature answers" in result.stdout


def test_cli_export_and_check_without_tensorflow_serving_api(tmp_path, monkeypatch):
    monkeypatch.setattr(export, "serving_api_installed", lambda: False)
    result = runner.invoke(app, ["export", "--base-path", str(tmp_path), "--weights", "random", "--layers", "block1_conv1"])
    assert result.exit_code == 0, result.output
    assert "no warmup file written" in result.stderr and "stylekeras[serving]" in result.stderr
    assert not (tmp_path / "vgg19_features/1" / export.WARMUP_FILE).exists()
    result = runner.invoke(app, ["export", "--base-path", str(tmp_path), "--check"])
    assert result.exit_code == 0, result.output
    assert "every signature answers" in result.stdout and "warmup requests not replayed" in result.stderr
    assert "warmup replay" not in result.stdout


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--layers", "block1_conv1,nope"], "unknown layer 'nope'"),
        (["--model-version", "0"], "--model-version must be ≥ 1"),
        (["--version", "0"], "--model-version must be ≥ 1"),  # the old name of the option still works
    ],
)
def test_cli_bad_export_options_leave_nothing_behind(tmp_path, arguments, message):
    result = runner.invoke(app, ["export", "--base-path", str(tmp_path / "models"), "--weights", "random", *arguments])
    assert result.exit_code == 2 and message in result.stderr and "Traceback" not in result.output
    leftovers = [p for p in (tmp_path / "models").rglob("*") if p.name not in (".lock",)] if (tmp_path / "models").exists() else []
    assert all(not p.name.isdigit() and not p.name.startswith(".partial") for p in leftovers)


def test_cli_unwritable_base_path(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = runner.invoke(app, ["export", "--base-path", str(blocker), "--weights", "random"])
    assert result.exit_code == 2 and "cannot create" in result.stderr


def test_killed_export_leaves_nothing_tf_serving_would_load(tmp_path):
    command = [sys.executable, str(ROOT / "cli.py"), "export", "--base-path", str(tmp_path), "--weights", "hed"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    model_dir = tmp_path / "vgg16_features"
    deadline = time.monotonic() + 120
    while not list(model_dir.glob(".partial-*/*")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert list(model_dir.glob(".partial-*")), "the export finished before it could be killed"
    assert not [entry for entry in model_dir.iterdir() if entry.name.isdigit()]
    assert export.export_feature_extractor(tmp_path, weights="random", layers=["block1_conv1"],
                                                      backbone="vgg16").name == "1"


@pytest.mark.parametrize("name", ["content.png", "style.png"])
def test_decoded_bytes_are_the_bits_the_cli_loads_in_a_graph_too(name, tmp_path):
    from PIL import Image

    from stylekeras.image_io import load_image

    path = Path(__file__).parent / "data" / name
    jpeg = tmp_path / "photo.jpg"
    Image.open(path).convert("RGB").save(jpeg, quality=90, subsampling=2)  # chroma subsampled: upsampling matters
    for source in (path, jpeg):
        encoded = tf.constant(source.read_bytes())
        np.testing.assert_array_equal(export.decode_image(encoded), load_image(source))
        np.testing.assert_array_equal(tf.function(export.decode_image)(encoded), load_image(source))
