"""Checkpoints for resuming a run: the image, the optimizer's state, the step and the settings, in one .npz.

Written atomically, so a kill at any moment leaves the previous checkpoint or the new one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
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
        raise StyleKerasError(f"`resume`: no checkpoint at '{path}' (it is written while a run goes on)")
    try:
        with np.load(path) as saved:
            arrays = dict(saved)
            meta = json.loads(str(arrays.pop("meta")))
    except (OSError, ValueError, KeyError) as error:
        raise StyleKerasError(f"`resume`: checkpoint '{path}' is unreadable ({error})") from None
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


class RunCheckpoints:
    """The checkpoints of one run, one file per photo (a `None` path: that photo keeps none).

    Each file carries its photo's `identity` (inputs, model, settings but `steps`), so a resumed run can
    refuse one made otherwise. The run saves every `every` steps (0: only when it stops early) and
    `finish`es by deleting them: a finished run leaves nothing to resume.
    """

    def __init__(self, paths: Sequence[str | os.PathLike | None], identities: Sequence[dict | None],
                 every: int = 0) -> None:
        self.paths = list(paths)
        self.identities = list(identities)
        self.every = every
        self.unwritten: dict[int, str] = {}  # photo → why its latest checkpoint could not be written

    def resume(self) -> list[Checkpoint]:
        """Each photo's checkpoint, checked against its identity; all must stand at the same step."""
        saved = [self._load(path, identity) for path, identity in zip(self.paths, self.identities)]
        positions = {(checkpoint.meta["scale"], checkpoint.meta["step"], checkpoint.meta["done"]) for checkpoint in saved}
        if len(positions) > 1:
            raise StyleKerasError("`resume`: the photos' checkpoints stopped at different steps; resume them one at a time")
        return saved

    def due(self, done: int) -> bool:
        return bool(self.every) and done % self.every == 0

    def save(self, position: dict, histories: Sequence[dict], images: Sequence[np.ndarray],
             optimizer_states: Sequence[list[np.ndarray]], average_states: Sequence[list[np.ndarray]]) -> None:
        """Write each photo's image, optimizer and average state at `position` (scale, step, steps done).

        A checkpoint that cannot be written (a full disk) leaves the one before in place and does not stop
        the run: `unwritten` says why."""
        for photo, path in enumerate(self.paths):
            if path is not None:
                meta = {**self.identities[photo], **position, "history": histories[photo]}
                try:
                    save_checkpoint(path, Checkpoint(meta, images[photo], optimizer_states[photo], average_states[photo]))
                except OSError as error:
                    self.unwritten[photo] = f"checkpoint '{path}' could not be written ({error.strerror or error})"
                else:
                    self.unwritten.pop(photo, None)

    def finish(self) -> None:
        for path in self.paths:
            if path is not None:
                Path(path).unlink(missing_ok=True)

    @staticmethod
    def _load(path, identity: dict) -> Checkpoint:
        if path is None:
            raise StyleKerasError("`resume` needs the checkpoint of the run to continue")
        saved = load_checkpoint(path)
        differences = mismatches({key: saved.meta.get(key) for key in identity}, json.loads(json.dumps(identity)))
        if differences:
            raise StyleKerasError(f"`resume`: the checkpoint was made with other inputs or settings ({'; '.join(differences)})")
        return saved
