import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def content_path() -> Path:
    return DATA / "content.png"  # 64×64, NASA astronaut portrait (public domain)


@pytest.fixture(scope="session")
def style_path() -> Path:
    return DATA / "style.png"  # 64×40, van Gogh's Starry Night (public domain)


@pytest.fixture(scope="session")
def random_stylizer():
    """A small random-weight VGG16 for testing mechanics (never evidence of stylization)."""
    import stylekeras

    return stylekeras.Stylizer(
        backbone="vgg16", weights="random", style_layers=("block1_conv1", "block2_conv1"),
        content_layers=("block2_conv2",), seed=1,
    )


@pytest.fixture(scope="session")
def hed_stylizer():
    import stylekeras

    return stylekeras.Stylizer(weights="hed")
