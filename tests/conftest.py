import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session", autouse=True)
def float32_unless_asked():
    """`precision="auto"` picks bfloat16 on machines with AMX/AVX512-BF16: in tests it means float32 on
    every machine, so their numbers do not depend on the CI host (the tests of "auto" patch this back)."""
    from stylekeras import features

    machine = features.bfloat16_is_fast
    with pytest.MonkeyPatch.context() as patch:  # given a cpuinfo file to read, it still reads it
        patch.setattr(features, "bfloat16_is_fast", lambda *cpuinfo: machine(*cpuinfo) if cpuinfo else False)
        yield


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
