import socket
import threading

import h5py
import keras
import numpy as np
import pytest

from stylekeras import weights as weights_module
from stylekeras.errors import StyleKerasError
from stylekeras.weights import resolve_weights


def _offline(*args, **kwargs):  # keras.utils.get_file without a network
    raise Exception("URL fetch failure on https://example.invalid: [Errno -2] Name or service not known")


def test_imagenet_unavailable_gives_one_line_naming_the_alternatives(monkeypatch):
    monkeypatch.setattr(keras.utils, "get_file", _offline)
    with pytest.raises(StyleKerasError) as raised:
        resolve_weights("imagenet")
    message = str(raised.value)
    assert "\n" not in message and "URL fetch failure" in message
    assert "imagenet-q8" in message and "`weights=PATH`" in message


def test_auto_falls_back_to_the_shipped_8_bit_vgg19_and_says_so(monkeypatch):
    monkeypatch.setattr(keras.utils, "get_file", _offline)
    chosen = resolve_weights("auto")
    assert chosen.source == "imagenet-q8" and chosen.backbone == "vgg19"
    assert "full ImageNet weights not available" in chosen.description
    kernel, bias = chosen.kernels["block1_conv1"]
    assert kernel.shape == (3, 3, 3, 64) and bias.shape == (64,) and kernel.dtype == np.float32
    assert len(np.unique(kernel)) <= 256  # 8-bit: at most 256 distinct values per layer


def test_auto_falls_back_when_the_download_server_never_answers(monkeypatch):
    """A network that accepts the connection (or drops its packets) and never answers must not hold the run:
    urllib would wait for ever."""
    with socket.socket() as silent:  # listens, so connections complete, but never reads or writes
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        address = f"http://127.0.0.1:{silent.getsockname()[1]}/stylekeras_test_never_answered_notop.h5"
        monkeypatch.setitem(weights_module._IMAGENET_NOTOP_FILES, "vgg19", (address, "0" * 32))
        monkeypatch.setattr(weights_module, "DOWNLOAD_TIMEOUT", 0.5)
        chosen = []  # in a thread, so that a wait without a limit fails the test instead of hanging it
        fallback = threading.Thread(target=lambda: chosen.append(resolve_weights("auto")), daemon=True)
        fallback.start()
        fallback.join(30)
    assert [weights.source for weights in chosen] == ["imagenet-q8"]
    assert socket.getdefaulttimeout() is None  # the process's default is left as it was


def test_auto_for_vgg16_falls_back_to_hed(monkeypatch):
    monkeypatch.setattr(keras.utils, "get_file", _offline)
    chosen = resolve_weights("auto", "vgg16")
    assert chosen.source == "hed" and chosen.backbone == "vgg16"
    assert "full ImageNet weights not available" in chosen.description


def test_auto_without_any_weights_names_three_ways(monkeypatch, tmp_path):
    monkeypatch.setattr(keras.utils, "get_file", _offline)
    monkeypatch.setattr(weights_module, "QUANTIZED_VGG19_PATH", tmp_path / "missing.bin")
    monkeypatch.setattr(weights_module, "hed_weights_path", lambda: None)
    with pytest.raises(StyleKerasError, match="one of three ways"):
        resolve_weights("auto")


def test_offline_auto_builds_no_model_for_the_download_that_fails(monkeypatch):
    built = []
    monkeypatch.setattr(keras.utils, "get_file", _offline)
    monkeypatch.setitem(weights_module._KERAS_APPLICATIONS, "vgg19", lambda **options: built.append(options))
    assert resolve_weights("auto").source == "imagenet-q8" and built == []


def test_imagenet_weights_are_keras_cached_file_loaded_into_the_backbone(monkeypatch, tmp_path):
    source = keras.applications.VGG19(include_top=False, weights=None, input_shape=(None, None, 3))
    layers = [(layer.name, layer.get_weights()) for layer in source.layers if layer.get_weights()]
    cached = tmp_path / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
    _write_legacy_h5(cached, layers)
    asked = []

    def cache(fname, origin, cache_subdir, file_hash):
        asked.append((fname, origin, cache_subdir, file_hash))
        return str(cached)

    monkeypatch.setattr(keras.utils, "get_file", cache)
    loaded = resolve_weights("imagenet")
    # The name, address and MD5 that keras.applications.VGG19(include_top=False, weights="imagenet") uses.
    assert asked == [("vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5", "https://storage.googleapis.com/tensorflow/"
                      "keras-applications/vgg19/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5", "models",
                      "253f8cb515780f3b799900260a226db6")]
    assert loaded.source == "imagenet" and loaded.backbone == "vgg19" and "Keras cache" in loaded.description
    assert set(loaded.kernels) == {name for name, _ in layers}
    for name, (kernel, bias) in layers:
        np.testing.assert_array_equal(loaded.kernels[name][0], kernel)
        np.testing.assert_array_equal(loaded.kernels[name][1], bias)


def test_quantized_weights_refuse_vgg16():
    with pytest.raises(StyleKerasError, match="VGG19 weights only"):
        resolve_weights("imagenet-q8", "vgg16")


def test_a_damaged_quantized_file_is_refused(monkeypatch, tmp_path):
    damaged = bytearray(weights_module.QUANTIZED_VGG19_PATH.read_bytes())
    damaged[-1] ^= 1
    path = tmp_path / "damaged.bin"
    path.write_bytes(bytes(damaged))
    monkeypatch.setattr(weights_module, "QUANTIZED_VGG19_PATH", path)
    with pytest.raises(StyleKerasError, match="damaged"):
        resolve_weights("imagenet-q8")


def test_hed_refuses_vgg19():
    with pytest.raises(StyleKerasError, match="VGG16 weights only"):
        resolve_weights("hed", "vgg19")


def test_weights_file_is_detected_and_loaded(tmp_path):
    source = keras.applications.VGG16(include_top=False, weights=None, input_shape=(None, None, 3))
    path = tmp_path / "vgg16.weights.h5"
    source.save_weights(path)
    loaded = resolve_weights(str(path))
    assert loaded.backbone == "vgg16"
    np.testing.assert_array_equal(loaded.kernels["block2_conv1"][0], source.get_layer("block2_conv1").kernel.numpy())


def _write_legacy_h5(path, layers) -> None:
    """A weights file in Keras 2's layout (what `keras.applications` downloads): a group per layer, in order,
    named in the `layer_names` attribute. `layers`: (name, [array, or a shape left unwritten]) pairs."""
    with h5py.File(path, "w") as file:
        file.attrs["layer_names"] = [name.encode() for name, _ in layers]
        file.attrs["keras_version"], file.attrs["backend"] = b"2.2.4", b"tensorflow"
        for name, values in layers:
            group = file.create_group(name)
            group.attrs["weight_names"] = [f"{name}_{kind}_1:0".encode() for kind in "Wb"[:len(values)]]
            for kind, value in zip("Wb", values):
                if isinstance(value, tuple):  # allocated lazily by HDF5: reads as zeros, takes no disk
                    group.create_dataset(f"{name}_{kind}_1:0", shape=value, dtype="float32")
                else:
                    group.create_dataset(f"{name}_{kind}_1:0", data=value)


@pytest.mark.parametrize("with_classifier", [False, True], ids=["notop", "with the classifier"])
def test_legacy_keras_2_weights_files_load(tmp_path, with_classifier):
    source = keras.applications.VGG16(include_top=False, weights=None, input_shape=(None, None, 3))
    layers = [(layer.name, layer.get_weights()) for layer in source.layers if layer.get_weights()]
    if with_classifier:
        layers += [("fc1", [(25088, 4096), (4096,)]), ("fc2", [(4096, 4096), (4096,)]),
                   ("predictions", [(4096, 1000), (1000,)])]
    path = tmp_path / "vgg16_weights_tf_dim_ordering_tf_kernels.h5"
    _write_legacy_h5(path, layers)
    loaded = resolve_weights(str(path))
    assert loaded.backbone == "vgg16" and set(loaded.kernels) == {name for name, _ in layers[:13]}
    for name, values in layers[:13]:
        np.testing.assert_array_equal(loaded.kernels[name][0], values[0])
        np.testing.assert_array_equal(loaded.kernels[name][1], values[1])


def test_weights_file_for_another_model_is_refused(tmp_path):
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    path = tmp_path / "dense.weights.h5"
    other.save_weights(path)
    with pytest.raises(StyleKerasError, match="not a Keras weights file for VGG19"):
        resolve_weights(str(path), "vgg19")


def test_missing_weights_file():
    with pytest.raises(StyleKerasError, match="no such file"):
        resolve_weights("/nonexistent/vgg.h5")
