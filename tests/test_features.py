"""stylekeras.features: the feature model is Keras' VGG (same layers, preprocessing and numbers for every weight
source, whichever form its convolutions take), and its mixed precision stays close to float32 and is used only
where it pays."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import stylekeras
from stylekeras import features, losses
from stylekeras.errors import StyleKerasError
from stylekeras.features import FlippedKernelConv2D, build_feature_model, layer_names
from stylekeras.image_io import load_image
from stylekeras.report import read_report
from stylekeras.weights import resolve_weights

APPLICATIONS = {
    "vgg19": (keras.applications.VGG19, keras.applications.vgg19.preprocess_input),
    "vgg16": (keras.applications.VGG16, keras.applications.vgg16.preprocess_input),
}


def _keras_reference(weights):
    """keras.applications' own VGG with the same parameters, outputting every layer."""
    application, preprocess = APPLICATIONS[weights.backbone]
    network = application(include_top=False, weights=None, input_shape=(None, None, 3))
    for name, values in weights.kernels.items():
        network.get_layer(name).set_weights(values)
    names = layer_names(weights.backbone)
    every_layer = keras.Model(network.input, {name: network.get_layer(name).output for name in names})
    return lambda rgb: every_layer(preprocess(rgb * 255.0)), names


def _file_weights(tmp_path, backbone):
    application, _ = APPLICATIONS[backbone]
    path = tmp_path / f"{backbone}.weights.h5"
    application(include_top=False, weights=None, input_shape=(None, None, 3)).save_weights(path)
    return resolve_weights(str(path))


@pytest.mark.parametrize("source", ["imagenet-q8", "hed", "file-vgg19", "file-vgg16"])
def test_every_layer_equals_keras_applications_vgg(source, tmp_path, content_path):
    """RGB in [0, 1] through our model = Keras' VGG on preprocess_input(RGB × 255): catches a BGR/RGB swap,
    a wrong mean or scale, a transposed kernel or a layer loaded into the wrong place."""
    weights = _file_weights(tmp_path, source[5:]) if source.startswith("file-") else resolve_weights(source)
    reference, names = _keras_reference(weights)
    ours = build_feature_model(weights, names)
    rgb = load_image(content_path, size=32)[None]  # a real photo: its colours are far from grey
    expected, found = reference(rgb), ours(rgb)
    for name in names:
        want, got = np.asarray(expected[name]), np.asarray(found[name])
        assert got.shape == want.shape, name
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * float(np.abs(want).max()) + 1e-6, err_msg=name)


def test_a_colour_swap_would_be_caught(content_path):
    """The comparison above can fail: BGR given where RGB is expected moves block1 far beyond its tolerance."""
    weights = resolve_weights("imagenet-q8")
    reference, _ = _keras_reference(weights)
    ours = build_feature_model(weights, ["block1_conv1"])
    rgb = load_image(content_path, size=32)[None]
    want = np.asarray(reference(rgb)["block1_conv1"])
    swapped = np.asarray(ours(rgb[..., ::-1])["block1_conv1"])
    assert np.abs(swapped - want).max() > 1e-2 * np.abs(want).max()


def test_flipped_kernel_convolution_and_its_gradients_are_conv2ds():
    """The transposed form computes Keras' Conv2D: outputs, and gradients for the input and the kernel, with
    channel counts that differ, so a kernel whose channels were not swapped could not even run."""
    inputs = tf.random.stateless_normal([2, 9, 11, 5], seed=[1, 2])
    kernel, bias = tf.random.stateless_normal([3, 3, 5, 7], seed=[3, 4]), tf.random.stateless_normal([7], seed=[5, 6])
    upstream = tf.random.stateless_normal([2, 9, 11, 7], seed=[7, 8])
    results = []
    for layer_type in (keras.layers.Conv2D, FlippedKernelConv2D):
        layer = layer_type(7, 3, padding="same", activation="relu")
        layer.build(inputs.shape)
        layer.set_weights([kernel.numpy(), bias.numpy()])
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            outputs = layer(inputs)
            product = tf.reduce_sum(outputs * upstream)
        results.append([outputs, *tape.gradient(product, [inputs, layer.kernel])])
    for name, want, got in zip(["outputs", "input gradient", "kernel gradient"], *results):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * float(np.abs(want).max()), err_msg=name)
    with pytest.raises(ValueError, match="stride-1"):
        FlippedKernelConv2D(7, 3, padding="valid")


@pytest.mark.parametrize("pays", [True, False])
def test_float32_models_take_flipped_kernels_only_where_they_pay(monkeypatch, pays):
    monkeypatch.setattr(features, "flipped_kernels_pay", lambda: pays)
    weights = resolve_weights("random", "vgg16")
    for precision, flipped in [("float32", pays), ("mixed", False)]:
        model = build_feature_model(weights, ["block2_conv1"], precision=precision)
        convolutions = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
        assert [type(layer) is FlippedKernelConv2D for layer in convolutions] == [False, flipped, flipped], precision


def test_flipped_kernels_do_not_pay_without_onednn_or_off_x86(monkeypatch):
    """Without oneDNN, TensorFlow's own forward convolution is the faster one; elsewhere than x86 it is
    unmeasured; and a TensorFlow whose private test of oneDNN is gone keeps Keras' Conv2D."""
    script = "from stylekeras.features import flipped_kernels_pay; print(flipped_kernels_pay())"
    found = subprocess.run([sys.executable, "-c", script], env={**os.environ, "TF_ENABLE_ONEDNN_OPTS": "0"},
                           capture_output=True, text=True, check=True).stdout
    assert found.strip() == "False"
    from tensorflow.python import util

    monkeypatch.setattr(util, "_pywrap_util_port", object())  # a TensorFlow without the private test
    assert features.flipped_kernels_pay() is False
    monkeypatch.undo()
    monkeypatch.setattr(features.platform, "machine", lambda: "aarch64")
    assert features.flipped_kernels_pay() is False


def test_mixed_precision_features_and_their_losses_are_close(content_path, style_path):
    image, style = load_image(content_path, 64)[None], load_image(style_path, 64)[None]
    exact_stylizer, mixed_stylizer = stylekeras.Stylizer(weights="hed"), stylekeras.Stylizer(weights="hed", precision="mixed")
    exact, mixed = exact_stylizer.model(image), mixed_stylizer.model(image)
    # The frozen kernels are kept in bfloat16, so no evaluation casts them from float32 again.
    assert {weight.dtype for weight in mixed_stylizer.model.weights} == {"bfloat16"}
    for name, maps in mixed.items():
        assert maps.dtype == tf.bfloat16  # the losses take them from here in float32
        error = float(tf.norm(tf.cast(maps, tf.float32) - exact[name]) / tf.norm(exact[name]))
        assert 0 < error < 0.05, name  # bfloat16 has 8 bits of mantissa: close, but not identical
        gram, exact_gram = losses.normalized_gram(maps), losses.normalized_gram(exact[name])
        assert gram.dtype == tf.float32
        assert float(tf.norm(gram - exact_gram) / tf.norm(exact_gram)) < 0.05, name
    # The Gram matrix of bfloat16 features is their exact float32 product (L-BFGS needs an exact loss);
    # only its gradient is bfloat16, like the convolutions it feeds.
    values = tf.cast(tf.random.normal([1, 16, 16, 8]), tf.bfloat16)
    np.testing.assert_allclose(losses.gram_matrix(values), losses.gram_matrix(tf.cast(values, tf.float32)), rtol=1e-6)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(values)
        exact_values = tf.cast(values, tf.float32)
        grams = [losses.gram_matrix(values) ** 2, losses.gram_matrix(exact_values) ** 2]
    gradients = [tape.gradient(gram, values) for gram in grams]
    assert gradients[0].dtype == tf.bfloat16
    bfloat16_gradient, exact_gradient = (tf.cast(gradient, tf.float32) for gradient in gradients)
    assert float(tf.norm(bfloat16_gradient - exact_gradient) / tf.norm(exact_gradient)) < 0.01
    targets = [stylizer.targets(image[0], [style[0]]) for stylizer in (exact_stylizer, mixed_stylizer)]
    parts = [stylizer.loss_parts(image, target) for stylizer, target in zip((exact_stylizer, mixed_stylizer), targets)]
    for name in ("content", "style", "tv"):
        assert parts[1][name].dtype == tf.float32
        np.testing.assert_allclose(parts[1][name], parts[0][name], rtol=0.05, atol=1e-3, err_msg=name)


def test_mixed_precision_stylizes(content_path, style_path):
    stylizer = stylekeras.Stylizer(weights="hed", precision="mixed")
    result = stylizer.transfer(content_path, style_path, size=64, steps=30)
    assert result.image.dtype == np.float32 and np.isfinite(result.image).all()
    assert result.history["style"][-1] < 0.2 * result.history["style"][0]


def test_unknown_precision_is_refused():
    with pytest.raises(StyleKerasError, match="`precision` 'half' is not one of auto, float32, mixed"):
        stylekeras.Stylizer(weights="random", backbone="vgg16", precision="half")


def test_bfloat16_hardware_and_speed_flags_are_read_from_cpu_flags(tmp_path):
    from stylekeras.features import bfloat16_is_fast, speed_flags

    with_amx, without, avx512f = tmp_path / "amx", tmp_path / "old", tmp_path / "xeon"
    with_amx.write_text("processor : 0\nflags : fpu sse2 avx2 avx512f amx_bf16 amx_tile\n")
    without.write_text("processor : 0\nflags : fpu sse2 avx2\n")
    avx512f.write_text("processor : 0\nflags : fpu sse2 avx2 avx512f avx512_vnni\n")  # bfloat16 emulated: slower
    assert bfloat16_is_fast(with_amx) is True
    assert bfloat16_is_fast(without) is False
    assert bfloat16_is_fast(avx512f) is False
    avx512_bf16 = tmp_path / "epyc"
    avx512_bf16.write_text("processor : 0\nflags : fpu sse2 avx2 avx512f avx512_bf16\n")
    assert bfloat16_is_fast(avx512_bf16) is True
    assert bfloat16_is_fast(tmp_path / "missing") is None
    assert speed_flags(with_amx) == "avx2, avx512f, amx_bf16" and speed_flags(without) == "avx2"
    assert speed_flags(tmp_path / "missing") == "unknown"


def test_cli_warns_when_mixed_precision_has_no_hardware(monkeypatch, tmp_path, content_path, style_path):
    from typer.testing import CliRunner

    from stylekeras.cli import app

    monkeypatch.setattr(features, "bfloat16_is_fast", lambda: False)
    arguments = ["transfer", str(content_path), str(style_path), "-o", str(tmp_path / "out.png"), "--size", "32",
                 "--steps", "1", "--weights", "random", "--precision", "mixed"]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0 and "--precision mixed is likely 3-10× slower than float32" in result.stderr
    result = CliRunner().invoke(app, arguments[:-1] + ["float32"])
    assert result.exit_code == 0 and "bfloat16" not in result.stderr
    result = CliRunner().invoke(app, arguments[:-2])  # the default, auto
    assert result.exit_code == 0 and "precision: float32 (auto: no bfloat16 hardware found)" in result.stderr
    assert read_report(tmp_path / "out.png")["model"]["precision"] == "float32"


def test_auto_precision_follows_the_hardware(monkeypatch):
    monkeypatch.setattr(features, "bfloat16_is_fast", lambda: True)
    assert features.resolve_precision("auto") == "mixed"
    for found in (False, None):  # None: it cannot tell, and float32 is never much slower
        monkeypatch.setattr(features, "bfloat16_is_fast", lambda found=found: found)
        assert features.resolve_precision("auto") == "float32"
    assert features.resolve_precision("mixed") == "mixed" and features.resolve_precision("float32") == "float32"
