"""Checkpoints for resuming a run: the image, the optimizer's state, the step and the settings, in one .npz.

Written atomically, so a kill at any moment leaves the previous checkpoint or the new one.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stylekeras.atomic import atomic_write
from stylekeras.errors import StyleKerasError


@dataclass
class Checkpoint:
    """`meta` holds the settings, identity of inputs and model, scale, step and loss history (JSON)."""

    meta: dict
    image: np.ndarray
    optimizer_state: list[np.ndarray]
    average_state: list[np.ndarray]


def save_checkpoint(path: str | os.PathLike, checkpoint: Checkpoint) -> None:
    path = Path(path)
    arrays = {"meta": np.array(json.dumps(checkpoint.meta)), "image": checkpoint.image}
    arrays.update({f"optimizer_{i}": value for i, value in enumerate(checkpoint.optimizer_state)})
    arrays.update({f"average_{i}": value for i, value in enumerate(checkpoint.average_state)})
    with atomic_write(path, private=True) as stream:
        np.savez(stream, **arrays)


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    path = Path(path)
    if not path.is_file():
        raise StyleKerasError(f"--resume: no checkpoint at '{path}' (it is written while a run goes on)")
    try:
        with np.load(path) as saved:
            arrays = dict(saved)
            meta = json.loads(str(arrays.pop("meta")))
    except (OSError, ValueError, KeyError) as error:
        raise StyleKerasError(f"--resume: checkpoint '{path}' is unreadable ({error})") from None
    ordered = lambda prefix: [arrays[f"{prefix}_{i}"] for i in range(sum(k.startswith(prefix) for k in arrays))]  # noqa: E731
    return Checkpoint(meta, arrays["image"], ordered("optimizer"), ordered("average"))


def mismatches(saved: dict, current: dict, prefix: str = "") -> list[str]:
    """Human-readable differences between two nested dicts of settings, e.g. `style_weight: 1e4 → 2e4`."""
    differences = []
    for key in sorted(set(saved) | set(current)):
        old, new = saved.get(key), current.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            differences += mismatches(old, new, f"{prefix}{key}.")
        elif old != new:
            differences.append(f"{prefix}{key}: {old!r} → {new!r}")
    return differences
