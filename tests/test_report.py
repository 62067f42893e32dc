"""stylekeras.report: every image carries its run report; the JSON report; `stylekeras info`."""

import json

import pytest

from stylekeras.report import read_report
from cli_run import TINY, run_cli


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp"])
def test_every_image_carries_its_report(tmp_path, content_path, style_path, suffix):
    output = tmp_path / f"out{suffix}"
    assert run_cli("transfer", content_path, style_path, "-o", output, *TINY, "--style-weight", "123").exit_code == 0
    report = read_report(output)
    assert report["settings"]["style_weight"] == 123.0 and report["settings"]["steps"] == 4
    assert report["model"]["backbone"] == "vgg19" and report["model"]["weights"].startswith("random")
    assert report["steps_done"] == 4 and report["seconds"] > 0 and set(report["versions"]) >= {"tensorflow", "keras"}
    assert set(report["final_losses"]) >= {"total", "content", "style", "tv"}
    shown = run_cli("info", output)
    assert shown.exit_code == 0 and json.loads(shown.stdout) == report


def test_report_json_has_the_loss_history(tmp_path, content_path, style_path):
    assert run_cli("transfer", content_path, style_path, "-o", tmp_path / "o.png", *TINY, "--report",
                tmp_path / "r.json").exit_code == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert len(report["history"]["total"]) == 4 and report["final_losses"]["total"] == report["history"]["total"][-1]


def test_info_and_from_refuse_images_without_a_report(tmp_path, content_path):
    result = run_cli("info", content_path)
    assert result.exit_code == 2 and "carries no stylekeras report" in result.stderr
    result = run_cli("transfer", "--from", content_path)
    assert result.exit_code == 2 and "carries no stylekeras report" in result.output
