"""Run reports: the settings and outcome behind an image, embedded in the image itself (by
`stylekeras.image_io.save_image`; `read_report` reads it back) and as JSON.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import keras
import numpy as np
import tensorflow as tf

from stylekeras.atomic import atomic_write
from stylekeras.errors import StyleKerasError
from stylekeras.image_io import read_report

if TYPE_CHECKING:
    from stylekeras.stylize import StyleResult

__all__ = ["run_report", "read_report", "report_matches", "write_report_json"]  # read_report: the reader beside the writer


def run_report(result: StyleResult, model: dict, inputs: dict | None = None, **extra) -> dict:
    """The report of a `StyleResult`: versions, model, settings, inputs, duration, final losses."""
    from stylekeras import __version__

    history = result.history
    return {
        "versions": {"stylekeras": __version__, "tensorflow": tf.__version__, "keras": keras.__version__},
        "model": model,
        "settings": asdict(result.settings),
        "inputs": inputs or {},
        "steps_done": result.steps_done,
        "resumed_from": result.resumed_from,
        "seconds": round(result.seconds, 2),
        "device": result.device,
        "stop_reason": result.stop_reason,
        "final_losses": {name: float(values[-1]) for name, values in history.items() if name != "size" and len(values)},
        **extra,
    }


def report_matches(path: str | os.PathLike, expected: dict) -> bool:
    """Whether `path` is an image stylekeras wrote whose report has every entry of `expected` (compared as
    JSON, so tuples equal lists); False for a missing or foreign file."""
    try:
        report = read_report(path)
    except StyleKerasError:
        return False
    return all(report.get(key) == value for key, value in json.loads(json.dumps(expected)).items())


def write_report_json(path: str | os.PathLike, report: dict, history: dict[str, np.ndarray]) -> Path:
    """The report plus the per-step loss history, as JSON, written atomically."""
    full = {**report, "history": {name: np.asarray(values).tolist() for name, values in history.items()}}
    with atomic_write(path) as stream:
        stream.write(json.dumps(full, indent=2).encode())
    return Path(path)
