import json

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import saved_model_pb2

from stylekeras import defaults, export, features, serving, stylize
from stylekeras.errors import StyleKerasError
from stylekeras.image_io import load_image
from stylekeras.settings import TransferSettings
from cli_run import run_cli

# A shallow random-weight network: the mechanics in seconds (never evidence of stylization).
SMALL = {"backbone": "vgg16", "weights": "random", "style_layers": ("block1_conv1", "block2_conv1"),
         "content_layers": ("block2_conv2",)}


# Scales as the library's default makes them (doubling up to the result), from 16 px: the sample requests
# (32 px) run two.
@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return serving.export_stylizer(tmp_path_factory.mktemp("saved_models"), size=0, steps=6, start_size=16, **SMALL)


@pytest.fixture(scope="module")
def exported_adam(tmp_path_factory):
    return serving.export_stylizer(tmp_path_factory.mktemp("saved_models"), optimizer="adam", size=0, steps=6,
                                   start_size=16, **SMALL)


@pytest.fixture(params=["lbfgs", "adam"])
def exported_each(request):
    return request.getfixturevalue("exported" if request.param == "lbfgs" else "exported_adam")


def _meta_graph(target):
    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((target / "saved_model.pb").read_bytes())
    return saved_model.meta_graphs[0]


def _signature_defs(target):
    return _meta_graph(target).signature_def


def test_signatures_and_their_defaults(exported):
    signatures = _signature_defs(exported)
    assert set(serving.SIGNATURES) | {"serving_default"} <= set(signatures)
    for name in ("stylize", "stylize_bytes", "stylize_with_targets"):
        # TF Serving fills inputs a request leaves out from the signature's defaults.
        # Without the colour sample: the palette start; without colours: the photo; without the ring's shares and
        # Gram matrices: the Gram matrices as given.
        optional = ({*serving.COLOR_INPUTS, serving.RING_SHARES, serving.RING_GRAMS, serving.DETAIL_ENERGY,
                     serving.COLOR_SAMPLE}
                    if name == "stylize_with_targets" else set())
        assert set(signatures[name].defaults) == set(serving.SCALARS) | optional
        assert {"image" if name != "stylize_bytes" else "image_png", "total_loss", "steps_done"} <= set(signatures[name].outputs)
    targets = {"block1_conv1", "block2_conv1", *serving.COLOR_INPUTS, serving.RING_SHARES, serving.RING_GRAMS,
               serving.DETAIL_ENERGY, serving.COLOR_SAMPLE}
    assert set(signatures["style_targets"].outputs) == targets
    assert set(signatures["stylize_with_targets"].inputs) == {"content", *targets, *serving.SCALARS}
    assert signatures["stylize"].defaults["steps"].int_val == [6]


def test_check_passes_through_the_c_api_and_the_warmup_replay(exported_each):
    settings = serving.read_stylizer_settings(exported_each)
    content, _ = serving.sample_requests(settings)
    assert settings.transfer_settings(size=None).sizes(content.shape[1]) == [16, 32]  # the check runs two scales
    results = serving.check_stylizer_export(exported_each)
    assert all(result.passed for result in results), "\n".join(map(str, results))
    loaders = {(result.signature, result.loader) for result in results if result.refused is None}
    assert len(loaders) == 8  # four signatures, each through the C API and the warmup replay
    assert sum(result.refused is not None for result in results) >= 10


def test_stylize_bytes_gives_what_the_cli_writes(exported, tmp_path, content_path, style_path):
    # The command a user would run for what a default request does, on this export's network.
    result = run_cli("transfer", content_path, style_path, "-o", tmp_path / "cli.png", "--size", "32", "--steps", "4",
                     "--start-size", "16", "--precision", "float32",
                     "--backbone", "vgg16", "--weights", "random", "--style-layers", "block1_conv1,block2_conv1",
                     "--content-layers", "block2_conv2", "--quiet")
    assert result.exit_code == 0, result.output
    (reply,) = export.run_with_c_api(exported, [("stylize_bytes", {
        "content_bytes": content_path.read_bytes(), "style_bytes": style_path.read_bytes(), "steps": np.int32(4),
        "size": np.int32(32)})])
    served = export.decode_image(reply.outputs["image_png"]).numpy()
    written = load_image(tmp_path / "cli.png")
    assert served.shape == written.shape == (32, 32, 3)
    assert np.max(np.abs(written - load_image(content_path, 32))) > 0.05  # four steps moved it from the photo
    # The graph decodes the bytes to the bits the CLI loads: the transport start would move pixels at ties in
    # the colours by whole levels for a last-bit difference.
    np.testing.assert_array_equal(served, written)


def test_a_result_unlike_the_library_fails_the_check():
    image = np.zeros((4, 4, 3), np.float32)
    grams = {"block1_conv1": np.ones((1, 2, 2), np.float32)}
    (close, far) = (serving._compare({"stylize": {"image": (image + shift)[None]}}, image, grams, "test")[0]
                    for shift in (5e-5, 1e-2))
    assert close.passed and not far.passed
    (targets,) = serving._compare({"style_targets": {"block1_conv1": grams["block1_conv1"] * 1.001}}, image, grams, "test")
    assert not targets.passed


def test_the_start_is_the_transport_the_palette_or_the_photo_as_the_targets_allow(exported):
    from stylekeras import color

    settings = serving.read_stylizer_settings(exported)
    content, style = serving.sample_requests(settings)
    (targets,) = export.run_with_c_api(exported, [("style_targets", {"style": style, "size": np.int32(content.shape[1])})])
    finest = {name: value[-1:] for name, value in targets.outputs.items()}  # one scale's targets: one scale runs
    colours = {*serving.COLOR_INPUTS, serving.COLOR_SAMPLE}
    grams = {name: value for name, value in finest.items()
             if name not in colours | {serving.RING_SHARES, serving.RING_GRAMS, serving.DETAIL_ENERGY}}
    run = {"content": content, "steps": np.int32(0), "size": np.int32(0), **grams}
    without_sample = {name: finest[name] for name in serving.COLOR_INPUTS}
    transport, palette, photo = export.run_with_c_api(exported, [
        ("stylize_with_targets", {**run, **finest}), ("stylize_with_targets", {**run, **without_sample}),
        ("stylize_with_targets", run)])
    resized = serving.resize_longer_side(style[0], content.shape[1])
    # The library's init="transport" and init="palette", in the graph.
    np.testing.assert_array_equal(transport.outputs["image"][0],
                                  stylize.initial_image("transport", content[0], [resized], seed=0))
    expected = color.match_to_statistics(content[0], *color.color_statistics([resized])).numpy()
    np.testing.assert_array_equal(palette.outputs["image"][0], expected)
    np.testing.assert_array_equal(photo.outputs["image"], content)


def test_a_style_smaller_than_the_result_is_used_at_its_own_size(exported):
    content, style = serving.sample_requests(serving.read_stylizer_settings(exported))
    small = style[:, ::2, ::2]  # half the content's size
    own, asked = export.run_with_c_api(exported, [("style_targets", {"style": small, "size": np.int32(0)}),
                                                  ("style_targets", {"style": small, "size": np.int32(content.shape[1])})])
    # The detail energy is measured in the band between the result's scales, which the result's size sets.
    for name, value in own.outputs.items():
        if name != serving.DETAIL_ENERGY:
            np.testing.assert_array_equal(asked.outputs[name], value)


def test_exports_from_before_the_palette_start_still_start_from_the_photo(exported, tmp_path):
    values = json.loads((exported / export.SETTINGS_FILE).read_text())
    assert values["init"] == "transport"  # the CLI's start, by default
    del values["init"]
    (tmp_path / "assets.extra").mkdir()
    (tmp_path / export.SETTINGS_FILE).write_text(json.dumps(values))
    assert serving.read_stylizer_settings(tmp_path).transfer_settings().init == "content"


@pytest.mark.parametrize("optimizer, weight, steps_done", [
    ("adam", "style_weight", range(1, 6)),  # finite losses until a huge gradient overflows Adam's second moment
    # L-BFGS's steps have a set length and never overflow mid-run: an infinite loss at the start stops it there.
    ("lbfgs", "content_weight", [0]),
])
def test_an_overflowing_loss_stops_with_the_last_finite_image(exported, exported_adam, optimizer, weight, steps_done):
    target = exported if optimizer == "lbfgs" else exported_adam
    settings = serving.read_stylizer_settings(target)
    assert settings.optimizer == optimizer and settings.steps == 6
    content, style = serving.sample_requests(settings)
    (reply,) = export.run_with_c_api(target, [("stylize", {"content": content, "style": style, weight: np.float32(3e38)})])
    assert reply.code == 0
    assert reply.outputs["steps_done"] in steps_done
    assert np.isfinite(reply.outputs["image"]).all()


def test_a_bfloat16_export_computes_in_bfloat16_and_gives_the_librarys_result(exported, tmp_path):
    mixed = serving.export_stylizer(tmp_path, size=0, steps=6, precision="mixed", start_size=16, **SMALL)
    assert serving.read_stylizer_settings(mixed).precision == "mixed"
    assert serving.read_stylizer_settings(exported).precision == "float32"
    functions = _meta_graph(mixed).graph_def.library.function
    convolutions = {node.attr["T"].type for function in functions for node in function.node_def
                    if node.op.startswith("Conv2D")}
    assert convolutions == {types_pb2.DT_BFLOAT16}
    # Against the library in bfloat16: a float32 library run differs from the served image by far more than
    # the check's tolerance, so a check that passes proves both sides computed in bfloat16.
    results = serving.check_stylizer_export(mixed)
    assert all(result.passed for result in results), "\n".join(map(str, results))


def test_defaults_and_limits_are_stored_with_the_export(exported, exported_adam):
    values = json.loads((exported / export.SETTINGS_FILE).read_text())
    assert values["kind"] == "stylizer" and values["max_pixels"] == 1024 * 1024 and values["steps"] == 6
    assert values["optimizer"] == "lbfgs" and values["learning_rate"] == 1.0 and values["lbfgs_history"] == 10
    assert serving.read_stylizer_settings(exported).transfer_settings().optimizer == "lbfgs"
    assert serving.read_stylizer_settings(exported_adam).transfer_settings().learning_rate == 0.02


def test_requests_default_to_the_optimizers_own_steps(tmp_path):
    for optimizer, steps in defaults.DEFAULT_SERVING_STEPS.items():
        target = serving.export_stylizer(tmp_path, optimizer=optimizer, version=1, overwrite=True, **SMALL)
        assert serving.read_stylizer_settings(target).steps == steps


@pytest.mark.parametrize("scales, start_size", [(None, None), (None, 16), (None, 300), (1, None), (3, None), (3, 40)])
def test_a_requests_scales_are_the_librarys(scales, start_size):
    sizes = tf.function(lambda size: serving.scale_sizes(size, scales, start_size))
    for size in [*range(start_size or 1, 1100, 7), 2048]:
        expected = TransferSettings(scales=scales, start_size=start_size, size=size).sizes(size)
        assert sizes(tf.constant(size)).numpy().tolist() == expected, size


def test_exports_from_before_the_scales_run_one(exported, tmp_path):
    values = json.loads((exported / export.SETTINGS_FILE).read_text())
    assert values["scales"] is None and values["start_size"] == 16
    del values["scales"], values["start_size"]
    (tmp_path / "assets.extra").mkdir()
    (tmp_path / export.SETTINGS_FILE).write_text(json.dumps(values))
    assert serving.read_stylizer_settings(tmp_path).transfer_settings().sizes(1024) == [1024]


def test_exports_from_before_the_optimizer_choice_still_run_adam(exported, tmp_path):
    values = json.loads((exported / export.SETTINGS_FILE).read_text())
    del values["optimizer"], values["lbfgs_history"]
    (tmp_path / "assets.extra").mkdir()
    (tmp_path / export.SETTINGS_FILE).write_text(json.dumps(values))
    assert serving.read_stylizer_settings(tmp_path).transfer_settings().optimizer == "adam"


@pytest.mark.parametrize("options, message", [
    ({"steps": 10, "max_steps": 5}, "above `max_steps=5`"),
    ({"size": 4}, "at least 8 px"),
    ({"size": 2000}, "must fit `max_pixels"),
    ({"max_pixels": 0}, "`max_pixels` must be ≥ 1"),
    ({"init": "noise"}, "`init` 'noise' is not one of transport, palette, content"),
    ({"precision": "auto"}, "`precision` 'auto' is not one of float32, mixed"),
    ({"optimizer": "sgd"}, "`optimizer` 'sgd' is not one of adam, lbfgs"),
    ({"max_steps": 50}, "`steps=60` is above `max_steps=50`"),  # the optimizer's default steps
])
def test_bad_export_options_are_refused_before_anything_is_written(tmp_path, options, message):
    with pytest.raises(StyleKerasError, match=message):
        serving.export_stylizer(tmp_path, weights="random", **options)
    assert not any(tmp_path.rglob("saved_model.pb"))


def test_cli_exports_and_checks_a_stylizer(tmp_path, monkeypatch):
    monkeypatch.setattr(features, "bfloat16_is_fast", lambda: False)  # as on a CPU with AVX512F alone
    result = run_cli("export", "--stylizer", "--weights", "random", "--size", "0", "--steps", "4", "--precision", "mixed",
                     "--start-size", "64", "--base-path", tmp_path)
    assert result.exit_code == 0, result.output
    assert serving.read_stylizer_settings(next(tmp_path.glob("*/1"))).start_size == 64
    assert "exported" in result.output and "stylizer" in result.output and "bfloat16 convolutions" in result.output
    assert "4 L-BFGS steps" in result.output
    assert "note: this machine has no bfloat16 hardware" in result.output
    check = run_cli("export", "--check", "--base-path", tmp_path)
    assert check.exit_code == 0, check.output
    assert "like the library" in check.output and "FAILED" not in check.output


def test_cli_refuses_layers_with_stylizer(tmp_path):
    result = run_cli("export", "--stylizer", "--layers", "block1_conv1", "--base-path", tmp_path)
    assert result.exit_code == 2 and "--layers is for the feature extractor" in result.output


def test_cli_refuses_stylizer_options_without_stylizer(tmp_path):
    result = run_cli("export", "--optimizer", "adam", "--steps", "50", "--precision", "mixed", "--base-path", tmp_path)
    assert result.exit_code == 2
    assert "--optimizer, --steps, --precision: for the stylizer export; add --stylizer" in result.output
    assert not any(tmp_path.iterdir())
