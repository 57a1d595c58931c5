"""The enrolled people's references, and the distance bands calibrated for them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from service.faces.decision import DecisionRule
from service.faces.modelfiles import MODELS_DIR


@dataclass(frozen=True)
class Thresholds:
    """Distance bands calibrated in `models/thresholds.json` (see models/MODEL_CARD.md)."""

    strong: float
    possible: float
    detector_min_score: float
    # The farthest a face may be and still be proposed (query expansion reaches past `possible`):
    # a scan keeps such faces' pictures until the source is decided.
    reach: float

    @classmethod
    def load(cls, path: Path = MODELS_DIR / "thresholds.json") -> Thresholds:
        data = json.loads(path.read_text())
        return cls(
            strong=float(data["strong"]),
            possible=float(data["possible"]),
            detector_min_score=float(data["detector_min_score"]),
            reach=DecisionRule.of(data).reach,
        )


class Gallery:
    """The enrolled people's reference encodings, stacked so one matrix product serves them all.

    A face's distance to a person is to their nearest reference, or the mean over their references
    (`over`, the decision rule's `references`)."""

    def __init__(
        self, people: Mapping[str, np.ndarray], over: str = DecisionRule.references
    ) -> None:
        if over not in ("nearest", "mean"):
            raise ValueError(f"distance over references: 'nearest' or 'mean', not {over!r}")
        self.over = over
        people = {name: np.atleast_2d(codes) for name, codes in people.items() if len(codes)}
        self.names = sorted(people)
        self._owners = (
            np.concatenate([np.full(len(people[name]), i) for i, name in enumerate(self.names)])
            if people
            else np.zeros(0, dtype=int)
        )
        self._codes = (
            np.concatenate([people[name] for name in self.names]) if people else np.zeros((0, 128))
        )

    def __len__(self) -> int:
        return len(self.names)

    def centres(self) -> np.ndarray:
        """(people, 128): the mean of each person's references."""
        return np.array(
            [self._codes[self._owners == i].mean(axis=0) for i in range(len(self.names))]
        )

    def distances(self, encodings: np.ndarray) -> np.ndarray:
        """(faces, people): each face's distance to each person (see `over`)."""
        if not len(encodings) or not len(self.names):
            return np.zeros((len(encodings), len(self.names)), dtype=np.float32)
        diff = encodings[:, None, :] - self._codes[None, :, :]
        distances = np.sqrt(np.einsum("fkd,fkd->fk", diff, diff))
        per_person = np.empty((len(encodings), len(self.names)), dtype=np.float32)
        combine = np.min if self.over == "nearest" else np.mean
        for i in range(len(self.names)):
            per_person[:, i] = combine(distances[:, self._owners == i], axis=1)
        return per_person
