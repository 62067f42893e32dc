"""The feature model is Keras' VGG: same layers, same preprocessing, same numbers, for every weight source."""

import keras
import numpy as np
import pytest

from stylekeras.features import build_feature_model, layer_names
from stylekeras.image_io import load_image
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
