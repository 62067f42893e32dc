"""stylekeras.checkpoint: a stopped run resumes to the same image, and refuses other inputs or settings."""

import numpy as np
import pytest

from stylekeras.errors import StyleKerasError
from stopping import StopAt


@pytest.mark.parametrize("options", [
    {"optimizer": "adam"},
    {"optimizer": "lbfgs", "average": 0.9},
    {"optimizer": "adam", "scales": 2, "start_size": 16},
    {"optimizer": "adam", "tile": 16, "tile_margin": 4},
])
def test_resume_continues_exactly_where_it_stopped(random_stylizer, content_path, style_path, tmp_path, options):
    run = dict(size=32, steps=6, init="noise", seed=5, **options)
    straight = random_stylizer.transfer(content_path, style_path, **run)
    checkpoint = tmp_path / "run.checkpoint.npz"
    stopped = random_stylizer.transfer(content_path, style_path, checkpoint=checkpoint, checkpoint_every=0,
                                       callback=StopAt(4 if options.get("scales") is None else 8), **run)
    assert stopped.stop_reason.startswith("interrupted") and checkpoint.exists()
    resumed = random_stylizer.transfer(content_path, style_path, checkpoint=checkpoint, resume=True, **run)
    assert resumed.stop_reason is None and resumed.steps_done == straight.steps_done
    np.testing.assert_array_equal(resumed.image, straight.image)
    np.testing.assert_array_equal(resumed.history["total"], straight.history["total"])
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
                                    resume=True)
    assert more.steps_done == 8  # more steps than first asked for is not a mismatch
