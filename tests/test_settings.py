"""stylekeras.settings: TransferSettings validated where they are made, a run's scales and steps, and no TensorFlow."""

import subprocess
import sys

from hypothesis import given, settings, strategies as st

from stylekeras.errors import StyleKerasError
from stylekeras.settings import TransferSettings


def test_settings_load_without_tensorflow():
    # The command checks its options with them before it loads TensorFlow (README, "Command line").
    script = ("import sys\nfrom stylekeras.settings import TransferSettings\nTransferSettings(size=256)\n"
              "print('tensorflow loaded:', 'tensorflow' in sys.modules)")
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert completed.stdout.strip() == "tensorflow loaded: False", completed.stderr


@settings(max_examples=200, deadline=None)
@given(
    steps=st.integers(-5, 10), weight=st.floats(allow_nan=True, allow_infinity=True),
    rate=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
    scales=st.integers(-1, 4), start=st.one_of(st.none(), st.integers(-3, 600)),
    average=st.one_of(st.none(), st.floats(-1, 2)), blend=st.one_of(st.none(), st.lists(st.floats(-1, 3), max_size=3)),
    init=st.sampled_from(["content", "noise", "style", "zeros", ""]),
)
def test_random_settings_are_accepted_or_refused_in_one_line(steps, weight, rate, scales, start, average, blend, init):
    try:
        TransferSettings(steps=steps, style_weight=weight, learning_rate=rate, scales=scales, start_size=start,
                         average=average, style_blend=tuple(blend) if blend is not None else None, init=init)
    except StyleKerasError as error:
        assert "\n" not in str(error)


def test_default_scales_start_at_256_px_and_at_most_double():
    # Every output is composed at 256 px, so a larger --size refines the same picture instead of
    # composing it at a finer scale.
    assert TransferSettings(size=512).sizes(0) == [256, 512]
    assert TransferSettings(size=1024).sizes(0) == [256, 512, 1024]
    assert TransferSettings(size=2048).sizes(0) == [256, 512, 1024, 2048]
    assert TransferSettings(size=600).sizes(0) == [256, 392, 600]  # no ratio above 2
    assert TransferSettings(size=300).sizes(0) == [256, 300]
    assert TransferSettings(size=256).sizes(0) == [256]
    assert TransferSettings(size=32).sizes(0) == [32]
    assert TransferSettings(size=None).sizes(1024) == [256, 512, 1024]
    assert TransferSettings(size=40, start_size=10).sizes(0) == [10, 20, 40]


def test_asked_scales_halve_the_size_and_leave_out_those_below_256_px():
    assert TransferSettings(size=1024, scales=2).sizes(0) == [512, 1024]
    assert TransferSettings(size=1024, scales=3).sizes(0) == [256, 512, 1024]
    assert TransferSettings(size=511, scales=2).sizes(0) == TransferSettings(size=511, scales=1).sizes(0) == [511]
    assert TransferSettings(size=40, scales=3, start_size=10).sizes(0) == [10, 20, 40]  # as asked
    assert TransferSettings(size=None, scales=1).sizes(300) == [300]


def test_each_finer_scale_runs_half_the_first_scales_steps():
    assert TransferSettings(size=512).scale_steps(0) == [60, 30]
    assert TransferSettings(size=2048).scale_steps(0) == [60, 30, 30, 30]
    assert TransferSettings(size=1024, scales=3, steps=9).scale_steps(0) == [9, 4, 4]
    assert TransferSettings(size=512, steps=1).scale_steps(0) == [1, 1] and TransferSettings(steps=0).scale_steps(0) == [0, 0]
