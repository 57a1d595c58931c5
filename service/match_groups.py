"""Look-alike groups of an owner's matches, across all friends: one stranger, one decision.

A scan's decision groups its own proposals (service/faces/decision.py). Here each such group joins
the owner's existing group whose centre is nearest, within the radius, or starts a new one. The
decision's groups are different individuals, so no two of them join one group: two look-alikes
0.3 apart stay two decisions. A group the owner rejected as a whole keeps its look-alikes from
being proposed again.
"""

from __future__ import annotations

import numpy as np
from sqlmodel import Session, select

from service.faces import ENCODER
from service.secrets_box import SecretBox
from service.states import Review
from service.tables import MatchGroup


class OwnerGroups:
    """The owner's groups, opened once per decision."""

    def __init__(self, session: Session, box: SecretBox, owner_id: int, radius: float) -> None:
        self.session, self.box, self.owner_id, self.radius = session, box, owner_id, radius
        # A group whose centre an earlier encoder made, and could not be made again, is left
        # out (service/reencode.py): its distances would mean nothing.
        self.groups = list(
            session.exec(
                select(MatchGroup).where(
                    MatchGroup.owner_id == owner_id, MatchGroup.encoder == ENCODER
                )
            )
        )
        self.centres = [box.open(g.sealed_centre) for g in self.groups]
        self.placed: set[int] = set()  # the groups this decision's groups went to

    def place(self, faces: np.ndarray, *, alone: bool = False) -> MatchGroup | None:
        """The group these look-alike faces belong to, or None if the owner rejected it.

        `alone`: a face the decision wants decided on its own joins no group (but a rejected
        group's look-alike is still not proposed again)."""
        centre = faces.mean(axis=0)
        if self.centres:
            gaps = np.linalg.norm(np.array(self.centres) - centre, axis=1)
            nearest = int(gaps.argmin())
            if gaps[nearest] <= self.radius and self.groups[nearest].decision == Review.rejected:
                return None
            gaps[list(self.placed)] = np.inf  # another of this decision's individuals is there
            nearest = int(gaps.argmin())
            if gaps[nearest] <= self.radius and not alone:
                self.placed.add(nearest)
                return self._grow(nearest, faces)
        group = MatchGroup(owner_id=self.owner_id, sealed_centre=self.box.seal(centre))
        group.size = len(faces)
        self.session.add(group)
        self.session.flush()  # the id goes on the matches
        self.groups.append(group)
        self.centres.append(centre)
        self.placed.add(len(self.groups) - 1)
        return group

    def _grow(self, index: int, faces: np.ndarray) -> MatchGroup:
        group = self.groups[index]
        total = self.centres[index] * group.size + faces.sum(axis=0)
        group.size += len(faces)
        self.centres[index] = total / group.size
        group.sealed_centre = self.box.seal(self.centres[index])
        self.session.add(group)
        return group
