"""stylekeras: neural style transfer (Gatys, Ecker & Bethge, CVPR 2016) on a Keras VGG.

    import stylekeras
    result = stylekeras.transfer("photo.jpg", "painting.jpg", size=256, steps=200)
    stylekeras.save_image(result.image, "out.png")
"""

from stylekeras.errors import StyleKerasError
from stylekeras.features import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS, build_feature_model, layer_names
from stylekeras.image_io import load_image, save_image
from stylekeras.stylize import StepReport, StyleResult, Stylizer, TransferSettings, transfer
from stylekeras.weights import VGGWeights, resolve_weights

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_CONTENT_LAYERS",
    "DEFAULT_STYLE_LAYERS",
    "StepReport",
    "StyleKerasError",
    "StyleResult",
    "Stylizer",
    "TransferSettings",
    "VGGWeights",
    "build_feature_model",
    "layer_names",
    "load_image",
    "resolve_weights",
    "save_image",
    "transfer",
]
