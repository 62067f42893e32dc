"""Three style images made by code, for the quality benchmark's held-out styles: no default was chosen on
them, they are the same on every machine, and being made here they are ours to ship (CC0).

- `stained_glass`: Voronoi cells in saturated glass colours, each shaded, between dark lead lines — the
  flat-colour, hard-edged kind of style (mosaics, cloisonné, stained glass), unlike any of the four paintings.
- `pencil_hatching`: grey pencil strokes on paper in three directions, denser and darker where a slow field
  is high — the monochrome, line kind (drawings, etchings).
- `pointillism`: a landscape (sky, hills, water, a sunlit bank) of small round dots of pure colour, each
  region's own colours mixed with their complements — the dotted kind (Seurat, Signac, mosaics of
  tesserae): a texture finer than any stroke of the four paintings, over the whole canvas.

    python bench/procedural_styles.py OUT_DIR     # writes OUT_DIR/glass.png, hatching.png and pointillism.png
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

HEIGHT, WIDTH = 600, 800
GLASS_COLOURS = np.array([[196, 30, 58], [247, 181, 0], [0, 105, 148], [34, 139, 34], [128, 0, 128],
                          [255, 127, 39], [90, 200, 250], [240, 230, 200]], np.float32)
LEAD = (25, 20, 18)
PAPER = 238.0


def stained_glass(seed: int = 7, cells: int = 260, lead_width: float = 3.0) -> Image.Image:
    """Voronoi cells of random sites, each a glass colour at a random brightness, shaded by a slow wave (as
    glass is never flat), with lead lines where the two nearest sites are within `lead_width` px of a tie."""
    rng = np.random.default_rng(seed)
    sites = rng.uniform([0, 0], [HEIGHT, WIDTH], size=(cells, 2)).astype(np.float32)
    rows, columns = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    nearest = np.full((HEIGHT, WIDTH), np.inf, np.float32)
    second = np.full((HEIGHT, WIDTH), np.inf, np.float32)
    cell = np.zeros((HEIGHT, WIDTH), np.int64)
    for index, (row, column) in enumerate(sites):
        distance = np.hypot(rows - row, columns - column)
        closer = distance < nearest
        second = np.where(closer, nearest, np.minimum(second, distance))
        cell = np.where(closer, index, cell)
        nearest = np.where(closer, distance, nearest)
    colours = GLASS_COLOURS[rng.integers(0, len(GLASS_COLOURS), cells)] * rng.uniform(0.75, 1.05, (cells, 1))
    image = colours[cell] * (0.85 + 0.15 * np.sin(columns / 23.0 + rows / 31.0))[..., None]
    image[second - nearest < lead_width] = LEAD
    return Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).filter(ImageFilter.SMOOTH)


def pencil_hatching(seed: int = 7, strokes: int = 14000) -> Image.Image:
    """Straight strokes 15–40 px long on grainy paper: each kept with the probability a slow field gives at its
    centre, drawn in one of three directions by that field's value and darker where it is high."""
    rng = np.random.default_rng(seed)
    paper = PAPER + rng.normal(0, 3, (HEIGHT, WIDTH))
    rows, columns = np.mgrid[0:HEIGHT, 0:WIDTH]
    field = 0.5 + 0.5 * np.sin(columns / 90.0) * np.cos(rows / 70.0)
    centres = rng.uniform([0, 0], [HEIGHT, WIDTH], size=(strokes, 2))
    density = field[centres[:, 0].astype(int), centres[:, 1].astype(int)]
    kept = rng.uniform(size=strokes) <= density
    centres, density = centres[kept], density[kept]
    angles = np.array([0.6, 0.6 + np.pi / 2, 1.2])[(density * 2.99).astype(int)] + rng.normal(0, 0.08, len(density))
    lengths = rng.uniform(15, 40, len(density))
    darkness = PAPER - 210 * density * rng.uniform(0.6, 1.0, len(density))
    along = np.linspace(-0.5, 0.5, 80)[None, :] * lengths[:, None]  # 80 points: at least 2 a pixel of the longest
    stroke_rows = (centres[:, :1] + along * np.sin(angles)[:, None]).astype(int)
    stroke_columns = (centres[:, 1:] + along * np.cos(angles)[:, None]).astype(int)
    inside = (stroke_rows >= 0) & (stroke_rows < HEIGHT) & (stroke_columns >= 0) & (stroke_columns < WIDTH)
    shade = np.broadcast_to(darkness[:, None], inside.shape)
    drawing = paper.ravel()
    np.minimum.at(drawing, stroke_rows[inside] * WIDTH + stroke_columns[inside], shade[inside])
    image = Image.fromarray(np.clip(drawing.reshape(HEIGHT, WIDTH), 0, 255).astype(np.uint8))
    return image.filter(ImageFilter.GaussianBlur(0.6)).convert("RGB")


# pointillism's regions, top to bottom, each with its dots' colours and how often each is drawn.
DOT_PALETTES = (  # sky, hills, water, sunlit bank
    ([[70, 120, 220], [240, 220, 120], [150, 190, 250], [250, 250, 230]], [0.45, 0.3, 0.15, 0.1]),
    ([[30, 120, 60], [90, 170, 60], [60, 60, 160], [200, 160, 60]], [0.45, 0.3, 0.15, 0.1]),
    ([[40, 90, 200], [110, 170, 240], [240, 200, 80], [250, 250, 250]], [0.45, 0.3, 0.15, 0.1]),
    ([[240, 160, 40], [250, 220, 90], [200, 80, 40], [90, 170, 60]], [0.45, 0.3, 0.15, 0.1]),
)
CANVAS = (245, 240, 225)


def pointillism(seed: int = 7, dots: int = 60000) -> Image.Image:
    """Dots 5–9 px across at random places on a light canvas, each in one of its region's colours at a
    random brightness; the regions are bands of the canvas, the hills' top edge a slow wave."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (WIDTH, HEIGHT), CANVAS)
    draw = ImageDraw.Draw(image)
    for row, column in rng.uniform([0, 0], [HEIGHT, WIDTH], size=(dots, 2)):
        across = column / WIDTH
        hills_top = 0.42 + 0.05 * (np.sin(20 * across) + np.sin(7 * across))
        region = 0 if row < hills_top * HEIGHT else 1 if row < 0.5 * HEIGHT else 2 if row < 0.75 * HEIGHT else 3
        colours, odds = DOT_PALETTES[region]
        colour = np.clip(np.array(colours[rng.choice(len(colours), p=odds)]) * rng.uniform(0.9, 1.05), 0, 255)
        radius = rng.uniform(2.5, 4.5)
        draw.ellipse([column - radius, row - radius, column + radius, row + radius], fill=tuple(int(v) for v in colour))
    return image


STYLES = {"glass": stained_glass, "hatching": pencil_hatching, "pointillism": pointillism}


def write_styles(folder: Path) -> dict[str, Path]:
    """Write each style as `folder/NAME.png` unless it is there; return the paths by name."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {name: folder / f"{name}.png" for name in STYLES}
    for name, path in paths.items():
        if not path.exists():
            STYLES[name]().save(path)
    return paths


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    for path in write_styles(Path(sys.argv[1])).values():
        print(f"wrote {path}")
