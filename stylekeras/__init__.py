"""stylekeras: neural style transfer (Gatys, Ecker & Bethge, CVPR 2016) on a Keras VGG.

    import stylekeras
    result = stylekeras.transfer("photo.jpg", "painting.jpg", size=256, steps=200)
    stylekeras.save_image(result.image, "out.png")

The names below load their modules (and TensorFlow) on first use, so `import stylekeras` and the
command's `--help` stay fast.
"""

from importlib import import_module

__version__ = "0.1.0"

_HOMES = {
    "DEFAULT_CONTENT_LAYERS": "stylekeras.defaults",
    "DEFAULT_STYLE_LAYERS": "stylekeras.defaults",
    "StepReport": "stylekeras.stylize",
    "StyleKerasError": "stylekeras.errors",
    "StyleResult": "stylekeras.stylize",
    "Stylizer": "stylekeras.stylize",
    "TransferSettings": "stylekeras.settings",
    "VGGWeights": "stylekeras.weights",
    "VideoSettings": "stylekeras.video",
    "build_feature_model": "stylekeras.features",
    "layer_names": "stylekeras.features",
    "load_image": "stylekeras.image_io",
    "preset": "stylekeras.stylize",
    "resolve_weights": "stylekeras.weights",
    "save_image": "stylekeras.image_io",
    "transfer": "stylekeras.stylize",
    "transfer_video": "stylekeras.video",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'stylekeras' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
