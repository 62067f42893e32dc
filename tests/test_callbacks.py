"""stylekeras.callbacks: TensorBoard logs as TensorBoard reads them, progress GIF and contact sheet, and the
progress bar's share of the work."""

import json

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from stylekeras import callbacks
from stylekeras.defaults import DEFAULT_STYLE_NORMALIZATION, DEFAULT_STYLE_WEIGHTS
from stylekeras.stylize import StepReport
from cli_run import TINY, run_cli


@pytest.mark.parametrize("helpers", [True, False], ids=["tf.summary helpers", "without tensorboard"])
def test_tensorboard_reads_the_scalars_images_and_settings(tmp_path, content_path, style_path, monkeypatch, helpers):
    from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator

    monkeypatch.setattr(callbacks, "tensorboard_installed", lambda: helpers)
    result = run_cli("transfer", content_path, style_path, "-o", tmp_path / "out.png", *TINY, "--logdir",
                  tmp_path / "logs", "--save-every", "2", "--report", tmp_path / "report.json")
    assert result.exit_code == 0, result.output
    events = EventAccumulator(str(tmp_path / "logs"))
    events.Reload()
    history = json.loads((tmp_path / "report.json").read_text())["history"]
    scalars = set(events.PluginTagToContent("scalars"))
    assert {"loss/total", "loss/content", "loss/style", "loss/tv", "loss/style/block1_conv1"} <= scalars
    totals = [float(tf.make_ndarray(event.tensor_proto)) for event in events.Tensors("loss/total")]
    np.testing.assert_allclose(totals, history["total"], rtol=1e-6)
    assert set(events.PluginTagToContent("images")) == {"image"}
    images = events.Tensors("image")
    assert [event.step for event in images] == [2, 4]
    width, height, png = tf.make_ndarray(images[-1].tensor_proto)[:3]
    saved = np.asarray(Image.open(tmp_path / "out.png"))
    assert (int(width), int(height)) == (saved.shape[1], saved.shape[0])
    assert np.abs(tf.io.decode_png(png).numpy().astype(int) - saved).max() <= 1  # the final image
    assert set(events.PluginTagToContent("text")) == {"settings"}
    settings_text = tf.make_ndarray(events.Tensors("settings")[0].tensor_proto).item().decode()
    assert f'"style_weight": {DEFAULT_STYLE_WEIGHTS[DEFAULT_STYLE_NORMALIZATION]}' in settings_text


def test_progress_gif_and_contact_sheet(tmp_path, content_path, style_path):
    gif, sheet = tmp_path / "run.gif", tmp_path / "sheet.png"
    result = run_cli("transfer", content_path, style_path, "-o", tmp_path / "o.png", *TINY, "--save-every", "1",
                  "--progress-gif", gif, "--contact-sheet", sheet)
    assert result.exit_code == 0, result.output
    with Image.open(gif) as animation:
        assert animation.n_frames == 4 and animation.is_animated
    with Image.open(sheet) as picture:  # content + style + 4 snapshots, 256 px tall, 6 px gaps
        style_width = round(64 * 256 / 40)  # the 64×40 style image at 256 px tall
        assert picture.size == (256 + style_width + 4 * 256 + 5 * 6, 256)


def test_the_progress_bar_fills_with_the_runs_work_and_counts_its_steps():
    losses = {"total": 3.0, "content": 1.0, "style": 1.5, "tv": 0.5}
    with callbacks.ProgressBar(steps=90, images=2) as bar:
        task = lambda task_id: next(task for task in bar.progress.tasks if task.id == task_id)  # noqa: E731
        assert task(bar.task).fields["count"] == "0/90"
        bar.start_image("a.jpg")
        bar.within_step(0.5)  # a tiled first step, before any report: a step's share of the steps
        assert task(bar.task).completed == pytest.approx(0.5 / 90)
        bar(StepReport(1, 90, losses, tf.zeros([4, 4, 3]), 256, 0.2 / 60, 0.2 / 60))
        # Step 60 of 90, the last at the coarse scale: a fifth of the work; the next step is a fine one.
        bar(StepReport(60, 90, losses, tf.zeros([4, 4, 3]), 256, 0.2, 0.4 / 30))
        assert (task(bar.task).completed, task(bar.task).fields["count"]) == (0.2, "60/90")
        bar.within_step(0.5)  # halfway through the fine step
        assert task(bar.task).completed == pytest.approx(0.2 + 0.2 / 30)
        bar(StepReport(90, 90, losses, tf.zeros([4, 4, 3]), 512, 1.0, 0.0))
        assert task(bar.task).completed == 1.0 and task(bar.images).fields["count"] == "1/2"
        bar.start_image("b.jpg")
        bar.within_step(0.5)  # the next photo's first step: the share the last photo's first step took
        assert task(bar.task).completed == pytest.approx(0.1 / 60)
