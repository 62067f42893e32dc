"""stylekeras.checkpoint: a stopped run resumes to the same image, and refuses other inputs or settings; a
checkpoint that cannot be written keeps the one before and does not stop the run."""

import numpy as np
import pytest

from stylekeras.errors import StyleKerasError
from full_disk import files_limited_to
from stopping import StopAt


@pytest.mark.parametrize("options", [
    {"optimizer": "adam"},
    {"optimizer": "lbfgs", "average": 0.9},
    {"optimizer": "adam", "scales": 2, "start_size": 16},
    {"optimizer": "adam", "scales": 3, "start_size": 16, "init": "transport"},  # the first scale's colour maps
    {"optimizer": "adam", "tile": 16, "tile_margin": 4},
])
def test_resume_continues_exactly_where_it_stopped(random_stylizer, content_path, style_path, tmp_path, options):
    run = dict(size=32, steps=6, seed=5, **{"init": "noise", **options})
    straight_reports, resumed_reports = [], []
    straight = random_stylizer.transfer(content_path, style_path, callback=straight_reports.append, **run)
    checkpoint = tmp_path / "run.checkpoint.npz"
    stopped = random_stylizer.transfer(content_path, style_path, checkpoint=checkpoint, checkpoint_every=0,
                                       callback=StopAt(4 if options.get("scales") is None else 8), **run)
    assert stopped.stop_reason.startswith("interrupted") and checkpoint.exists()
    resumed = random_stylizer.transfer(content_path, style_path, checkpoint=checkpoint, resume=True,
                                       callback=resumed_reports.append, **run)
    assert resumed.stop_reason is None and resumed.steps_done == straight.steps_done
    np.testing.assert_array_equal(resumed.image, straight.image)
    np.testing.assert_array_equal(resumed.history["total"], straight.history["total"])
    # The progress bar's share of the work goes on from where the run stopped.
    def shares(reports):
        return [(report.step, report.work_done, report.next_step_work) for report in reports]

    np.testing.assert_allclose(shares(resumed_reports), shares(straight_reports)[-len(resumed_reports):])
    assert not checkpoint.exists()  # finished: nothing left to resume


def test_resume_reports_setting_and_input_mismatches(random_stylizer, content_path, style_path, tmp_path):
    checkpoint = tmp_path / "run.checkpoint.npz"
    random_stylizer.transfer(content_path, style_path, size=32, steps=5, style_weight=1e4, checkpoint=checkpoint,
                             callback=StopAt(2))
    with pytest.raises(StyleKerasError, match=r"style_weight: 10000\.0 → 5\.0"):
        random_stylizer.transfer(content_path, style_path, size=32, steps=5, style_weight=5.0, checkpoint=checkpoint,
                                 resume=True)
    with pytest.raises(StyleKerasError, match="inputs: "):
        random_stylizer.transfer(style_path, style_path, size=32, steps=5, style_weight=1e4, checkpoint=checkpoint,
                                 resume=True)
    more = random_stylizer.transfer(content_path, style_path, size=32, steps=8, style_weight=1e4, checkpoint=checkpoint,
                                    resume=True, min_improvement=1e-9)
    assert more.steps_done == 8  # more steps, or another stopping rule, than first asked for is not a mismatch


def test_a_checkpoint_that_cannot_be_written_keeps_the_one_before_and_the_run_goes_on(
        random_stylizer, content_path, style_path, tmp_path):
    run = dict(size=32, steps=6, optimizer="adam", seed=5)
    checkpoint = tmp_path / "run.checkpoint.npz"
    random_stylizer.transfer(content_path, style_path, checkpoint=checkpoint, callback=StopAt(2), **run)
    saved = checkpoint.read_bytes()
    with files_limited_to(1024):  # a checkpoint of a 32 px image is larger
        stopped = random_stylizer.transfer(content_path, style_path, checkpoint=checkpoint, resume=True,
                                           checkpoint_every=1, callback=StopAt(4), **run)
    assert stopped.stop_reason.startswith("interrupted") and stopped.steps_done == 4
    assert stopped.checkpoint_error == f"checkpoint '{checkpoint}' could not be written (File too large)"
    assert checkpoint.read_bytes() == saved and not list(tmp_path.glob(".*.tmp"))
    resumed = random_stylizer.transfer(content_path, style_path, checkpoint=checkpoint, resume=True, **run)
    assert resumed.resumed_from == 2 and resumed.steps_done == 6 and resumed.checkpoint_error is None
