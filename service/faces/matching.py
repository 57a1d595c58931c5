"""Matching faces against every enrolled person at once; a face goes to its nearest person."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from service.faces.modelfiles import MODELS_DIR

Band = Literal["strong", "possible"]


@dataclass(frozen=True)
class Thresholds:
    """Distance bands calibrated in `models/thresholds.json` (see models/MODEL_CARD.md)."""

    strong: float
    possible: float
    detector_min_score: float

    @classmethod
    def load(cls, path: Path = MODELS_DIR / "thresholds.json") -> Thresholds:
        data = json.loads(path.read_text())
        return cls(
            strong=float(data["strong"]),
            possible=float(data["possible"]),
            detector_min_score=float(data["detector_min_score"]),
        )

    def band(self, distance: float) -> Band | None:
        if distance <= self.strong:
            return "strong"
        if distance <= self.possible:
            return "possible"
        return None


@dataclass(frozen=True)
class PersonMatch:
    person: str
    distance: float
    band: Band


class Gallery:
    """The enrolled people's reference encodings, stacked so one matrix product serves them all."""

    def __init__(self, people: Mapping[str, np.ndarray]) -> None:
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

    def nearest(self, encodings: np.ndarray) -> list[tuple[str, float]]:
        """For each encoding, the nearest person and the distance to their closest reference."""
        if not len(encodings) or not len(self.names):
            return []
        diff = encodings[:, None, :] - self._codes[None, :, :]
        distances = np.sqrt(np.einsum("fkd,fkd->fk", diff, diff))
        per_person = np.full((len(encodings), len(self.names)), np.inf)
        for i in range(len(self.names)):
            per_person[:, i] = distances[:, self._owners == i].min(axis=1)
        best = per_person.argmin(axis=1)
        return [(self.names[j], float(per_person[f, j])) for f, j in enumerate(best)]

    def match(self, encodings: np.ndarray, thresholds: Thresholds) -> list[PersonMatch | None]:
        """The band each face falls in for its nearest person, or None for a stranger."""
        result: list[PersonMatch | None] = []
        for person, distance in self.nearest(encodings):
            band = thresholds.band(distance)
            result.append(PersonMatch(person, round(distance, 4), band) if band else None)
        return result
