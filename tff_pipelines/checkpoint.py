"""Everything a run needs to continue, in one file replaced atomically after each round.

The learning-process state is stored flat (dm-tree order) and restored into the structure of a
fresh `initialize()`; the model weights are stored again in Keras order so that export needs no
TFF. Sampler RNG state and the privacy ledger travel in the JSON metadata: a resumed run draws the
same cohorts and reports the same epsilon as one that never stopped.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tree

FILENAME = "checkpoint.npz"


@dataclass(frozen=True)
class Checkpoint:
    round: int
    state_leaves: list[np.ndarray]
    trainable: list[np.ndarray]
    non_trainable: list[np.ndarray]
    meta: dict[str, Any]

    def restore_state(self, template):
        """The saved learning-process state, in the structure of `template` (a fresh state)."""
        leaves = tree.flatten(template)
        if len(leaves) != len(self.state_leaves):
            raise ValueError(
                f"checkpoint holds {len(self.state_leaves)} state tensors, the process has "
                f"{len(leaves)}: was the spec changed since the run started?"
            )
        restored = [
            np.asarray(saved, dtype=np.asarray(leaf).dtype).reshape(np.shape(leaf))
            for saved, leaf in zip(self.state_leaves, leaves, strict=True)
        ]
        return tree.unflatten_as(template, restored)


def save(run_dir: Path, round_num: int, state, model_weights, meta: dict[str, Any]) -> None:
    arrays: dict[str, np.ndarray] = {}
    for i, leaf in enumerate(tree.flatten(state)):
        arrays[f"state_{i}"] = np.asarray(leaf)
    for i, w in enumerate(model_weights.trainable):
        arrays[f"trainable_{i}"] = np.asarray(w)
    for i, w in enumerate(model_weights.non_trainable):
        arrays[f"non_trainable_{i}"] = np.asarray(w)
    arrays["meta"] = np.array(json.dumps({**meta, "round": round_num}))
    path = Path(run_dir) / FILENAME
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def exists(run_dir: Path) -> bool:
    return (Path(run_dir) / FILENAME).is_file()


def load(run_dir: Path) -> Checkpoint:
    with np.load(Path(run_dir) / FILENAME, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))

        def series(prefix: str) -> list[np.ndarray]:
            count = sum(
                1 for k in data.files if k.startswith(prefix) and k[len(prefix) :].isdigit()
            )
            return [data[f"{prefix}{i}"] for i in range(count)]

        return Checkpoint(
            round=int(meta["round"]),
            state_leaves=series("state_"),
            trainable=series("trainable_"),
            non_trainable=series("non_trainable_"),
            meta=meta,
        )
