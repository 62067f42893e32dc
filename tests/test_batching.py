"""Several photos stylized in one pass (`Stylizer.transfer_batch`, `--batch-size`): each photo's result,
history, callback and checkpoint must be what it would get alone."""

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stylekeras import StyleKerasError, load_image, save_image
from stylekeras.checkpoint import load_checkpoint
from stylekeras.cli import _Interrupts, app
from cli_run import TINY, run_cli, runner
from full_disk import files_limited_to


RUN = {"size": 32, "steps": 6, "style_weight": 1e6, "optimizer": "adam"}  # batches of several photos need Adam


@pytest.fixture(scope="module")
def photos(content_path, style_path):
    """Two different 64×64 photos: the content image and the style image squeezed to its size."""
    squeezed = np.asarray(Image.open(style_path).convert("RGB").resize((64, 64)), np.float32) / 255
    return [load_image(content_path), load_image(squeezed)]


@pytest.mark.parametrize("options", [
    {},
    {"size": 64, "steps": 3, "scales": 2, "start_size": 32, "average": 0.9},
    {"preserve_color": "histogram", "style_normalization": "balanced", "style_weight": 1e9},  # targets per photo
    {"preserve_color": "luminance", "precision": "mixed"},
], ids=["plain", "scales-average", "per-photo-targets", "luminance-mixed"])
def test_each_photo_of_a_batch_gets_its_result_alone(hed_stylizer, photos, style_path, options):
    options = {**RUN, **options}
    stylizer, tolerance = hed_stylizer, 1e-3
    if options.pop("precision", None):
        import stylekeras

        # bfloat16 convolutions round a batch of two differently from one photo: equal to rounding only.
        stylizer, tolerance = stylekeras.Stylizer(weights="hed", precision="mixed"), 1e-2
    together = stylizer.transfer_batch(photos, style_path, **options)
    for photo, result in zip(photos, together):
        alone = stylizer.transfer(photo, style_path, **options)
        assert result.steps_done == alone.steps_done == sum(result.settings.scale_steps(64))
        np.testing.assert_allclose(result.history["total"], alone.history["total"], rtol=tolerance)
        # Adam's first steps move each pixel by about ±learning_rate whatever its gradient's size, so a pixel
        # whose gradient is near zero may step the other way after rounding: allow a few such pixels.
        differs = np.abs(result.image - alone.image) > 2 * tolerance
        assert differs.mean() < 1e-3 and np.abs(result.image - alone.image).mean() < tolerance / 10
    assert np.abs(together[0].image - together[1].image).mean() > 0.05  # really two different photos


def test_batch_callbacks_see_each_photos_losses_and_image(random_stylizer, photos, style_path):
    seen = [[], []]
    callbacks = [lambda report, photo=photo: seen[photo].append((report.losses["total"], np.array(report.image)))
                 for photo in range(2)]
    results = random_stylizer.transfer_batch(photos, style_path, callbacks=callbacks, **RUN)
    for photo, result in enumerate(results):
        assert [total for total, _ in seen[photo]] == list(result.history["total"])
        np.testing.assert_array_equal(seen[photo][-1][1], result.image)


def test_an_interrupted_batch_resumes_together_or_photo_by_photo(random_stylizer, photos, style_path, tmp_path):
    checkpoints = [tmp_path / "first.npz", tmp_path / "second.npz"]
    straight = random_stylizer.transfer_batch(photos, style_path, **RUN)

    def stop_after_step_3(report):
        if report.step == 3:
            raise KeyboardInterrupt

    stopped = random_stylizer.transfer_batch(photos, style_path, callbacks=[None, stop_after_step_3],
                                             checkpoints=checkpoints, **RUN)
    assert all(result.stop_reason == "interrupted after step 3 of 6" for result in stopped)
    assert [load_checkpoint(path).meta["step"] for path in checkpoints] == [3, 3]
    second_alone = random_stylizer.transfer(photos[1], style_path, checkpoint=checkpoints[1], resume=True, **RUN)
    np.testing.assert_allclose(second_alone.image, straight[1].image, atol=1e-4)
    np.testing.assert_allclose(second_alone.history["total"], straight[1].history["total"], rtol=1e-4)
    (first_again,) = random_stylizer.transfer_batch(photos[:1], style_path, checkpoints=checkpoints[:1], resume=True,
                                                    **RUN)
    np.testing.assert_allclose(first_again.image, straight[0].image, atol=1e-4)
    assert not any(path.exists() for path in checkpoints)  # finished: nothing left to resume


def test_batch_refuses_what_it_cannot_do_before_any_compute(random_stylizer, photos, content_path, style_path):
    with pytest.raises(StyleKerasError, match="photo 2 of the batch is 64×40 px and photo 1 64×64"):
        random_stylizer.transfer_batch([content_path, style_path], style_path, size=None, steps=1, optimizer="adam")
    with pytest.raises(StyleKerasError, match="L-BFGS"):
        random_stylizer.transfer_batch(photos, style_path, **{**RUN, "optimizer": "lbfgs"})
    with pytest.raises(StyleKerasError, match="`tile`"):
        random_stylizer.transfer_batch(photos, style_path, tile=16, **RUN)
    (alone,) = random_stylizer.transfer_batch(photos[:1], style_path, tile=16, **{**RUN, "optimizer": "lbfgs"})
    assert alone.stop_reason is None  # one photo may use both


def test_an_overflow_stops_the_batch_names_the_photo_and_keeps_finite_images(random_stylizer, photos, style_path):
    results = random_stylizer.transfer_batch(photos, style_path, **{**RUN, "style_weight": 1e38})
    assert all(result.stop_reason.startswith("photo 1's update overflowed") for result in results)
    assert all(np.isfinite(result.image).all() for result in results)


def test_cli_batch_size_groups_photos_of_one_size(tmp_path, content_path, style_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name, source in (("a", content_path), ("b", style_path), ("c", content_path)):
        pixels = load_image(source)
        save_image(pixels[::-1] if name == "c" else pixels, photos / f"{name}.png")
    tiny = ["--size", "32", "--steps", "4", "--weights", "random", "--quiet", "--json", "--optimizer", "adam"]
    results = {}
    for batch_size in ("1", "2"):
        out = tmp_path / f"out{batch_size}"
        result = runner.invoke(app, ["transfer", str(photos), str(style_path), "-o", str(out), *tiny,
                                     "--batch-size", batch_size, "--report", str(tmp_path / f"r{batch_size}.json")])
        assert result.exit_code == 0, result.output
        results[batch_size] = sorted(os.path.basename(path) for path in json.loads(result.stdout)["written"])
        assert (tmp_path / f"r{batch_size}_b.json").exists()
    assert results["1"] == results["2"] == ["a_style.png", "b_style.png", "c_style.png"]
    for name in results["1"]:
        alone, together = (np.asarray(Image.open(tmp_path / f"out{size}" / name), np.float32) for size in "12")
        assert np.abs(alone - together).max() <= 2  # 8-bit rounding of nearly equal images


def test_cli_refuses_batch_size_with_lbfgs_in_one_line(tmp_path, content_path, style_path):
    result = runner.invoke(app, ["transfer", str(content_path.parent / "*.png"), str(style_path), "-o",
                                 str(tmp_path / "out"), "--optimizer", "lbfgs", "--batch-size", "2"])
    assert result.exit_code == 2 and "error: --batch-size: L-BFGS" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_cli_batch_resume_starts_photos_without_a_checkpoint(tmp_path, content_path, style_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("a", "b"):
        save_image(load_image(content_path), photos / f"{name}.png")
    result = runner.invoke(app, ["transfer", str(photos), str(style_path), "-o", str(tmp_path / "out"), "--size", "32",
                                 "--steps", "2", "--weights", "random", "--quiet", "--resume", "--batch-size", "2",
                                 "--optimizer", "adam"])
    assert result.exit_code == 0, result.output
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["a_style.png", "b_style.png"]


def test_signals_wait_while_results_are_written_and_stop_the_next_step():
    with _Interrupts() as interrupts:
        interrupts.deferred = True
        with interrupts.held():
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)  # even a second one waits: the file is being written
        with pytest.raises(KeyboardInterrupt):
            interrupts.check(None)
        assert interrupts.exit_code() == 130


def test_batch_writes_each_photo_skips_failures_and_existing(tmp_path, content_path, style_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("a.png", "b.png"):
        (photos / name).write_bytes(content_path.read_bytes())
    (photos / "broken.jpg").write_text("not an image")
    out = tmp_path / "out"
    result = run_cli("transfer", photos, style_path, "-o", out, *TINY, "--json")
    assert result.exit_code == 1  # one photo failed while running
    summary = json.loads(result.stdout)
    assert [Path(p).name for p in summary["written"]] == ["a_style.png", "b_style.png"]
    assert summary["failed"][0]["content"].endswith("broken.jpg") and "not an image" in summary["failed"][0]["error"]
    assert "error: content image" in result.stderr and "skipped" in result.stderr
    (photos / "broken.jpg").unlink()
    result = run_cli("transfer", photos, style_path, "-o", out, *TINY, "--json", "--skip-existing")
    assert result.exit_code == 0 and len(json.loads(result.stdout)["skipped"]) == 2


def test_a_photo_whose_result_cannot_be_written_fails_and_the_batch_goes_on(tmp_path, content_path, style_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("a.png", "b.png"):
        (photos / name).write_bytes(content_path.read_bytes())
    with files_limited_to(1024):  # smaller than a 32 px result: as on a full disk
        result = run_cli("transfer", photos, style_path, "-o", tmp_path / "out", *TINY, "--json")
    assert result.exit_code == 1 and "Traceback" not in result.output
    summary = json.loads(result.stdout)
    assert summary["written"] == [] and [Path(f["content"]).name for f in summary["failed"]] == ["a.png", "b.png"]
    assert all(f["error"].startswith("cannot write") and "(File too large)" in f["error"] for f in summary["failed"])


def test_batch_computes_the_style_targets_once(random_stylizer, content_path, style_path, monkeypatch):
    from stylekeras.image_io import load_image

    style = load_image(style_path, 32)
    calls = []
    network = random_stylizer.feature_maps
    monkeypatch.setattr(random_stylizer, "feature_maps", lambda images: calls.append(images.shape) or network(images))
    monkeypatch.setattr(random_stylizer, "_style_cache", {})  # the session fixture may have seen this style
    first = random_stylizer.style_grams(style)
    assert random_stylizer.style_grams(style) is first and len(calls) == 1


def test_batch_from_a_glob_pattern(tmp_path, content_path, style_path):
    for name in ("x1.png", "x2.png", "other.png"):
        (tmp_path / name).write_bytes(content_path.read_bytes())
    out = tmp_path / "out"
    result = run_cli("transfer", str(tmp_path / "x*.png"), style_path, "-o", out, *TINY, "--json")
    assert result.exit_code == 0, result.output
    assert [Path(p).name for p in json.loads(result.stdout)["written"]] == ["x1_style.png", "x2_style.png"]


def test_run_batch_records_failures_skips_and_stops(tmp_path):
    from stylekeras.batch import run_batch
    from stylekeras.errors import StyleKerasError

    contents = [tmp_path / f"{name}.png" for name in ("a", "b", "c", "d", "e")]
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a_style.png").write_text("")
    ran, passed = [], []

    def stylize_group(group, outputs):
        (content,), (output,) = group, outputs
        ran.append(content.stem)
        if content.stem == "b":
            raise StyleKerasError("b is broken")
        return [(output, "interrupted after step 3" if content.stem == "d" else None)]

    summary = run_batch(contents, tmp_path / "out", Path("style.jpg"), stylize_group, skip_existing=True,
                        on_passed=lambda content, error: passed.append((content.stem, error)))
    assert ran == ["b", "c", "d"]  # a skipped, e never reached after d stopped
    assert passed == [("a", None), ("b", "b is broken")]
    assert [Path(p).name for p in summary.written] == ["c_style.png", "d_style.png"]
    assert summary.failed == [{"content": str(contents[1]), "error": "b is broken"}]
    assert summary.stop_reason == "interrupted after step 3"


def test_run_batch_groups_photos_of_one_size_and_checks_them_first(tmp_path):
    from stylekeras.batch import run_batch
    from stylekeras.errors import StyleKerasError

    sizes = {"a": (64, 48), "b": (48, 64), "c": (64, 48), "d": (64, 48), "e": None, "f": (48, 64), "g": (64, 48)}
    contents = [tmp_path / f"{name}.png" for name in sizes]
    events = []

    def size_of(content):
        if sizes[content.stem] is None:
            raise StyleKerasError(f"{content.stem} is unreadable")
        return sizes[content.stem]

    def stylize_group(group, outputs):
        events.append([content.stem for content in group])
        if group[0].stem == "b":
            raise StyleKerasError("out of luck")
        return [(output, None) for output in outputs]

    summary = run_batch(contents, tmp_path, Path("style.jpg"), stylize_group, batch_size=2, batch_key=size_of,
                        on_passed=lambda content, error: events.append((content.stem, error)))
    # The unreadable photo fails before any compute; groups hold at most 2 photos of one size, in order.
    assert events == [("e", "e is unreadable"), ["a", "c"], ["d", "g"], ["b", "f"], ("b", "out of luck"),
                      ("f", "out of luck")]
    assert [Path(p).stem for p in summary.written] == ["a_style", "c_style", "d_style", "g_style"]
    assert [Path(f["content"]).stem for f in summary.failed] == ["e", "b", "f"]
