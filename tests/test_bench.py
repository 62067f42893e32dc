"""bench/benchmark.py's machine description: every benchmark section names the CPU its numbers hold on."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from benchmark import cpu_model  # noqa: E402


def _cpuinfo(tmp_path, name):
    path = tmp_path / "cpuinfo"
    core = f"processor\t: {{}}\ncpu family\t: 26\nmodel\t\t: 2\nmodel name\t: {name}\n\n"
    path.write_text(core.format(0) + core.format(1))
    return path


def test_cpu_model_adds_family_and_model_to_a_name_without_numbers(tmp_path):
    assert cpu_model(_cpuinfo(tmp_path, "AMD EPYC")) == "AMD EPYC, family 26, model 2"


def test_cpu_model_keeps_a_name_that_tells_the_cpu(tmp_path):
    name = "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz"
    assert cpu_model(_cpuinfo(tmp_path, name)) == name


def test_cpu_model_is_empty_without_cpuinfo(tmp_path):
    assert cpu_model(tmp_path / "missing") == ""
