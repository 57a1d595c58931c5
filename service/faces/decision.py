"""Which faces of one source to propose, decided on the whole source rather than face by face.

One nearest distance under a global threshold cannot be fair with this encoder: strangers of some
groups sit as close to an owner as the owner's own photos do (see models/MODEL_CARD.md). So a face
is proposed for its nearest enrolled person only when all of these hold:

1. **Near**: within `possible` of that person's references, over all of them (`references`: the
   mean distance to them, or the nearest's).
2. **Stands out from the source** (Z-norm): the distances from that person's references to every
   face of the same source are mostly strangers' distances, a cohort that is dense where the
   person's look-alikes are. The face's distance, normalised by the cohort's mean and spread, must
   reach `z_max`. A small source borrows from a calibrated prior; a source where the person
   appears very often has that person's own faces taken out of the cohort first.
3. **Not someone else who recurs**: no face of the source that is clearly another person (farther
   than `possible`) is nearer to it than the references are, by `competitor_margin`.

A face that fails 2 is still proposed when query expansion reaches it: it is near the centre of
the references and the faces kept so far (`expand_radius`), or a little farther (`neighbour_radius`)
with one of those kept faces as its nearest look-alike in the source. This also reaches a blurred
or dark photo of the person just past `possible`, up to `expand_reach`.

Proposals are then gathered into groups of look-alikes, so a stranger proposed by mistake is one
decision for the owner, and never shares a group with the owner's own faces. A group that does not
stand out as a whole is a stranger who recurs, and none of it is proposed. A proposal in the
possible band, nearly as near another enrolled person (a look-alike relative), or whose nearest
look-alike in the source is in another group, joins no group: it is a decision of its own.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from service.faces.modelfiles import MODELS_DIR
from service.states import Band

_BLOCK = 2048  # rows per block of a distance matrix: bounded memory at any source size
PRINT_BYTES = 32  # a photo's fingerprint (`images.photo_print`)
COPY_BITS = 12  # two photos whose fingerprints differ in no more bits are one photo
COMMON_BAND = 64  # a band of a fingerprint shared by more photos tells nothing (see _Copies)


@dataclass(frozen=True)
class DecisionRule:
    """The parameters of the rule. The defaults are the shipped values; models/thresholds.json
    (`decision`, written by models/calibrate.py) is what the service and the scan command read."""

    possible: float = 0.6
    strong: float = 0.53
    # A face's distance to a person: to their "nearest" reference, or the "mean" over them. With
    # two or three references the mean is steadier than the nearest, which one lucky reference
    # decides; the bands above apply to it.
    references: str = "mean"
    z_max: float = -2.0
    competitor_margin: float = 0.1
    group_radius: float = 0.4
    # Cohort estimates for small sources are pulled toward a calibrated, strict prior.
    prior_mean: float = 0.75
    prior_sd: float = 0.10
    prior_weight: int = 40
    # A person who appears this often is taken out of their own cohort.
    seed_distance: float = 0.42
    seed_share: float = 0.08
    seed_min: int = 3
    # Faces the rule kept sharpen the person's centre; a near face this close to it is kept too.
    expand_radius: float = 0.48
    # ...and looks this far from the references for them (a blurred or dark photo of the person
    # drifts just past `possible`; only its nearness to the sharpened centre lets it in). A scan
    # keeps a sealed picture of every face within reach until the source is decided: with SFace,
    # per owner 2.4% of a platform source's faces lie within 0.64, 4.8% within 0.66 and 12.5%
    # within 0.68 (models/EXPERIMENTS.md, "The reach of 0.66 and a third second opinion").
    # 0.66 finds blurred photos of the person that 0.64 leaves (platform recall +0.013) for twice
    # the sealed pictures held during a scan; 0.68 would hold five times as many.
    expand_reach: float = 0.66
    # A face a little farther from that centre is kept too when its nearest look-alike in the
    # source is a face already kept: a stranger's face has his own other photos nearest. Copies
    # of one photo (re-encoded, resized, or the same file twice) sit within `copy_distance` of
    # each other and are not look-alikes of it.
    neighbour_radius: float = 0.56
    copy_distance: float = 0.2
    # A group of this many look-alikes within this reach is judged as a whole, by its median.
    group_min: int = 3
    group_reach: float = 0.7
    stranger_radius: float = 0.5  # a look-alike group other than the person's own
    # A proposal nearly as near another enrolled person (a look-alike relative) is a decision of
    # its own, as one in the possible band is: confirming one person's group must not confirm a
    # relative's photo with it. Re-encoding one photo moves a face by 0.06 at the median, so a
    # smaller lead than this tells the two people apart by no more than noise.
    ambiguity_margin: float = 0.05

    @property
    def reach(self) -> float:
        """The farthest a face may be from a person's references and still be proposed."""
        return max(self.possible, self.expand_reach if self.expand_radius > 0 else 0.0)

    @classmethod
    def load(cls, path: Path = MODELS_DIR / "thresholds.json") -> DecisionRule:
        return cls.of(json.loads(path.read_text()))

    @classmethod
    def of(cls, data: dict) -> DecisionRule:
        """The rule from thresholds.json's contents."""
        params = data.get("decision", {})
        fields = cls.__dataclass_fields__
        return cls(
            possible=float(data["possible"]),
            strong=float(data["strong"]),
            **{k: v for k, v in params.items() if k in fields and k not in ("possible", "strong")},
        )


@dataclass(frozen=True)
class Proposal:
    face: int  # index into the source's faces
    person: str
    distance: float
    band: Band
    z: float
    group: int  # 1, 2, ... within this decision; the owner's closest faces come first
    alone: bool = False  # its own decision: never joins a group, here or across scans
    # A face the rule kept in a photo where a nearer face of the same person was kept too: the
    # photo is proposed once, by that nearer face (this index). The farther one waits behind it,
    # in case the owner says the nearer one is not them (`decide(..., standby=True)`); its `group`
    # is the group it would have joined, or 0 for none of this decision's groups.
    behind: int | None = None


@dataclass(frozen=True)
class Cohort:
    """Every face of one source: its encoding, and its distance to each enrolled person."""

    encodings: np.ndarray  # (faces, 128) float32
    distances: np.ndarray  # (faces, people): Gallery.distances, the rule's `references`

    @classmethod
    def empty(cls, people: int) -> Cohort:
        return cls(np.zeros((0, 128), np.float32), np.zeros((0, people), np.float32))

    @classmethod
    def stack(cls, encodings: Sequence[np.ndarray], distances: Sequence[np.ndarray], people: int):
        if not encodings:
            return cls.empty(people)
        return cls(
            np.asarray(np.vstack(encodings), np.float32),
            np.asarray(np.vstack(distances), np.float32).reshape(-1, people),
        )

    def __len__(self) -> int:
        return len(self.encodings)


def decide(
    cohort: Cohort,
    people: Sequence[str],
    anchors: np.ndarray,
    rule: DecisionRule,
    photos: Sequence[Hashable | None] | None = None,
    *,
    prints: Sequence[bytes | None] | None = None,
    standby: bool = False,
) -> list[Proposal]:
    """The faces to propose, each for its nearest person, with its band and group.

    `anchors` holds each person's reference centre: their own group starts there, so the
    person's faces gather in group 1 and a stranger proposed by mistake starts a group of his own.
    `photos`, if given, names each face's photo (None: a face of its own): a person is proposed
    once a photo. With `standby`, the farther faces the rule kept in such a photo come too, each
    `behind` the face proposed for it. `prints`, if given, holds each face's photo fingerprint
    (`images.photo_print`; None if unknown): a photo the source holds twice (a copy saved back
    from a chat, "name (1).jpg") is one photo when a look-alike group is judged.
    """
    if not len(cohort) or not people:
        return []
    nearest = cohort.distances.argmin(axis=1)
    runner_up = _runner_up(cohort.distances)
    copies = _Copies(prints) if prints is not None else None
    proposals: list[Proposal] = []
    for p, person in enumerate(people):
        mine = nearest == p
        if (cohort.distances[mine, p] <= rule.possible).any():
            proposals += _decide_person(
                cohort, p, person, mine, anchors[p], runner_up, rule, photos, copies
            )
    return [p for p in proposals if standby or p.behind is None]


def _decide_person(
    cohort: Cohort,
    p: int,
    person: str,
    mine: np.ndarray,
    anchor: np.ndarray,
    runner_up: np.ndarray,
    rule: DecisionRule,
    photos: Sequence[Hashable | None] | None,
    copies: _Copies | None = None,
) -> list[Proposal]:
    """`mine` marks the faces whose nearest person is this one; `runner_up` is each face's
    distance to its second nearest person; `photos` names each face's photo, and `copies` tells
    which photos are copies of one another (by their fingerprints)."""
    d = cohort.distances[:, p].astype(np.float64)
    near = np.flatnonzero(mine & (d <= rule.possible))
    clear = _without_competitor(cohort, p, near, rule)
    mean, sd = _cohort_stats(cohort, d, near[clear], rule)
    z = (d[near] - mean) / sd
    kept = near[clear & (z <= rule.z_max)]
    expanded, beyond, followed = _expansion(cohort, kept, near, mine, d, anchor, rule, copies)
    kept = np.concatenate([near[clear & ((z <= rule.z_max) | expanded)], beyond])
    # Groups over the person's look-alikes a little past reach: a stranger who recurs brings his
    # farther photos along, and his group as a whole does not stand out from the crowd.
    reach = np.flatnonzero((d <= rule.group_reach) | (mine & (d <= rule.possible)))
    groups = _groups(cohort.encodings, reach[np.argsort(d[reach], kind="stable")], anchor, rule)
    doubtful = _doubtful_groups(groups, d, mean, sd, rule, followed, copies)
    kept = np.array([i for i in kept.tolist() if groups[i] not in doubtful], dtype=int)
    kept, behind = _once_a_photo(kept, d, photos)
    between = _between_groups(cohort.encodings, kept, groups, rule, copies)
    alone = _alone(kept, d, runner_up, rule, between)
    numbers = _numbered({i: groups[i] for i in kept.tolist() if i not in alone})
    last = max(numbers.values(), default=0)
    numbers.update({i: last + n for n, i in enumerate(alone, start=1)})
    by_group = {groups[i]: n for i, n in numbers.items() if i not in alone}
    numbers.update({i: by_group.get(groups[i], 0) for i in behind})
    zs = dict(zip(near.tolist(), z.tolist(), strict=True))
    zs.update({i: (d[i] - mean) / sd for i in [*kept.tolist(), *behind] if i not in zs})
    return [
        Proposal(
            face=int(i),
            person=person,
            distance=round(float(d[i]), 4),
            band=Band.strong if d[i] <= rule.strong else Band.possible,
            z=round(zs[int(i)], 2),
            group=numbers[int(i)],
            alone=int(i) in alone,
            behind=behind.get(int(i)),
        )
        for i in [*kept.tolist(), *behind]
    ]


def _expansion(
    cohort: Cohort,
    kept: np.ndarray,
    near: np.ndarray,
    mine: np.ndarray,
    d: np.ndarray,
    anchor: np.ndarray,
    rule: DecisionRule,
    copies: _Copies | None = None,
) -> tuple[np.ndarray, np.ndarray, set[int]]:
    """Query expansion from the faces `kept` so far: which `near` faces it keeps (a mask), the
    faces past `possible`, up to `expand_reach`, that it adds, and those it followed to the
    person by their nearest look-alike."""
    if rule.expand_radius <= 0 or not len(kept):
        return np.zeros(len(near), dtype=bool), np.zeros(0, dtype=int), set()
    codes = cohort.encodings[kept].astype(np.float64)
    centre = (2 * anchor + codes.sum(axis=0)) / (2 + len(codes))
    candidates = np.flatnonzero(mine & (d <= rule.expand_reach))
    gap = np.linalg.norm(cohort.encodings[candidates] - centre, axis=1)
    joins = gap <= rule.expand_radius
    farther = ~joins & (gap <= rule.neighbour_radius) & ~np.isin(candidates, kept)
    if farther.any():
        joins[farther] = _nearest_are_kept(
            cohort.encodings, candidates[farther], kept, rule, copies
        )
    joined = candidates[joins]
    followed = set(candidates[farther & joins].tolist())
    return np.isin(near, joined), joined[d[joined] > rule.possible], followed


def _nearest_are_kept(
    encodings: np.ndarray,
    faces: np.ndarray,
    kept: np.ndarray,
    rule: DecisionRule,
    copies: _Copies | None = None,
) -> np.ndarray:
    """For each of `faces`: is its nearest look-alike in the source (copies of its own photo
    aside) one of the faces kept? A copy of its photo that was kept counts as kept: it is the
    same photo."""
    rest = np.setdiff1d(np.arange(len(encodings)), kept)
    to_kept = _min_distances(encodings[faces], encodings[kept])
    # (each face is in `rest` itself: the floor leaves it out even at copy_distance 0)
    near_copies = max(rule.copy_distance, 1e-3)
    skip = copies.among(faces, rest) if copies is not None else None
    return to_kept < _min_distances(encodings[faces], encodings[rest], near_copies, skip)


def _alone(
    kept: np.ndarray,
    d: np.ndarray,
    runner_up: np.ndarray,
    rule: DecisionRule,
    between: np.ndarray,
) -> list[int]:
    """The proposals in the possible band, those nearly as near another enrolled person, and
    those `between` two groups, nearest first: each is a decision of its own. Confirming a group
    confirms many photos at once, and neither a stranger's blurred or dark look-alike at 0.56, nor
    a look-alike relative's photo, nor a face the grouping could have put with a look-alike
    stranger's, must ride along with the person's own faces (models/MODEL_CARD.md, "Groups")."""
    doubtful = (d[kept] > rule.strong) | (runner_up[kept] - d[kept] < rule.ambiguity_margin)
    return sorted(kept[doubtful | between].tolist(), key=lambda i: d[i])


def _between_groups(
    encodings: np.ndarray,
    kept: np.ndarray,
    groups: dict[int, int],
    rule: DecisionRule,
    copies: _Copies | None = None,
) -> np.ndarray:
    """For each kept face: is its nearest look-alike among the grouped faces (its own copies
    aside) in another group? A look-alike stranger's photo can land in the person's own group
    (0.35 from the references, where the person's own sit at 0.28-0.37), but its nearest
    look-alike is then mostly one of the stranger's own other photos."""
    if not len(kept):
        return np.zeros(0, dtype=bool)
    grouped = np.fromiter(groups, dtype=int, count=len(groups))
    near_copies = max(rule.copy_distance, 1e-3)  # the face itself is at 0: never its look-alike
    skip = copies.among(kept, grouped) if copies is not None else None
    _, nearest = _nearest_rows(encodings[kept], encodings[grouped], near_copies, skip)
    found = nearest >= 0
    theirs = np.array([groups[int(i)] for i in kept])
    others = np.array([groups[int(j)] for j in grouped[np.maximum(nearest, 0)]])
    return found & (theirs != others)


def _once_a_photo(
    kept: np.ndarray, d: np.ndarray, photos: Sequence[Hashable | None] | None
) -> tuple[np.ndarray, dict[int, int]]:
    """The kept faces but the farther ones of a photo with two or more, and each farther face
    with the nearest of its photo, which it stands behind. A person is in a photo once, so only
    the nearest can be theirs, and it is the photo a friend takes down; but if the owner says the
    nearest is not them, the next is the one to ask about. (A collage of the person twice loses
    a face, not the photo.)"""
    if photos is None:
        return kept, {}
    first: dict[Hashable, int] = {}
    behind: dict[int, int] = {}
    for i in sorted(kept.tolist(), key=lambda i: (d[i], i)):
        if photos[i] in first:
            behind[i] = first[photos[i]]
        elif photos[i] is not None:
            first[photos[i]] = i
    return np.array([i for i in kept.tolist() if i not in behind], dtype=int), behind


def _runner_up(distances: np.ndarray) -> np.ndarray:
    """Each face's distance to its second nearest person (infinite with one person enrolled)."""
    if distances.shape[1] < 2:
        return np.full(len(distances), np.inf)
    return np.partition(distances, 1, axis=1)[:, 1].astype(np.float64)


def _doubtful_groups(
    groups: dict[int, int],
    d: np.ndarray,
    mean: float,
    sd: float,
    rule: DecisionRule,
    followed: set[int],
    copies: _Copies | None = None,
) -> set[int]:
    """Groups of several photos (not the person's own) whose median distance does not stand
    out: a stranger who recurs. Not a group most of whose faces within reach were `followed` to
    the person (their nearest look-alike, copies aside, is one of the person's kept faces): that
    is a photo of the person shared many times, apart from the others, not a stranger's own
    photos. A photo the source holds twice counts once, by its nearer face: two photos of the
    person, one exported twice, are not three photos of a stranger."""
    members: dict[int, list[int]] = {}
    for i, g in groups.items():
        members.setdefault(g, []).append(i)
    doubtful = set()
    for g, faces in members.items():
        if g == 0 or len(faces) < rule.group_min:
            continue
        once = _each_photo_once(faces, d, copies)
        if (
            len(once) >= rule.group_min
            and (np.median(d[once]) - mean) / sd > rule.z_max
            and not _mostly_followed(once, followed, d, rule)
        ):
            doubtful.add(g)
    return doubtful


def _each_photo_once(faces: list[int], d: np.ndarray, copies: _Copies | None) -> list[int]:
    """The group's faces, nearest first, without those whose photo is, or is a copy of, the
    photo of a face already taken (faces of a photo without a fingerprint each count)."""
    order = sorted(faces, key=lambda i: d[i])
    if copies is None:
        return order
    taken: list[int] = []
    seen: set[int] = set()
    for i in order:
        photo = copies.photo(i)
        if photo is None:
            taken.append(i)
        elif photo not in seen and not seen.intersection(copies.copies(photo)):
            taken.append(i)
            seen.add(photo)
    return taken


class _Copies:
    """Which photos of a source are copies of one another, by their fingerprints: two photos
    whose fingerprints differ in 1 to COPY_BITS bits (a copy saved back from a chat, re-compressed
    and smaller; the bench's sit 0-7 bits from their original, other photos 16 or more). Equal
    fingerprints are one photo (or a copy whose faces the encodings tell, equal too).

    A copy carries the photo's faces, moved by the re-compression: a night shot's by up to 0.37,
    past `copy_distance`. So the faces of a copy are no look-alikes of the photo's faces, and a
    photo held twice counts once.

    Two fingerprints within COPY_BITS agree on at least 4 of their 16 bands of 16 bits, so only
    photos that share a band are compared, which is linear in the photos. A band shared by more
    than COMMON_BAND photos (a flat sky, a white page) is passed over: it tells nothing."""

    def __init__(self, prints: Sequence[bytes | None]) -> None:
        known = np.array([i for i, f in enumerate(prints) if f is not None], dtype=np.int64)
        joined = b"".join(prints[i] or b"" for i in known.tolist())
        raw = np.frombuffer(joined, dtype=np.uint8).reshape(len(known), PRINT_BYTES)
        distinct, which = np.unique(raw, axis=0, return_inverse=True)
        which = which.ravel()
        self._print = dict(zip(known.tolist(), which.tolist(), strict=True))  # face -> photo
        order = np.argsort(which, kind="stable")
        bounds = np.searchsorted(which[order], np.arange(len(distinct) + 1))
        self._faces = [known[order[bounds[k] : bounds[k + 1]]] for k in range(len(distinct))]
        self._copies: dict[int, list[int]] = {}
        for a, b in _copy_pairs(distinct):
            self._copies.setdefault(a, []).append(b)
            self._copies.setdefault(b, []).append(a)

    def photo(self, face: int) -> int | None:
        """The face's photo (faces of equal fingerprints share one), None without a print."""
        return self._print.get(face)

    def copies(self, photo: int) -> list[int]:
        return self._copies.get(photo, [])

    def among(self, faces: np.ndarray, others: np.ndarray) -> _Skip:
        """For each of `faces`, the positions in `others` of the faces in copies of its photo."""
        skip: _Skip = []
        for face in faces.tolist():
            photo = self.photo(face)
            copies = self.copies(photo) if photo is not None else []
            theirs = np.concatenate([self._faces[c] for c in copies]) if copies else None
            skip.append(np.flatnonzero(np.isin(others, theirs)) if theirs is not None else None)
        return skip


def _copy_pairs(distinct: np.ndarray) -> list[tuple[int, int]]:
    """The pairs of distinct fingerprints (rows of bytes) within COPY_BITS of each other."""
    bands = distinct.view(">u2")  # (photos, 16)
    codes = distinct.view(np.uint64)
    found: set[tuple[int, int]] = set()
    for band in bands.T:
        order = np.argsort(band, kind="stable")
        values = band[order]
        starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
        sizes = np.diff(np.r_[starts, len(values)])
        size = np.repeat(sizes, sizes)  # the size of each position's run
        for step in range(1, min(COMMON_BAND, len(values))):
            same = np.flatnonzero((values[step:] == values[:-step]) & (size[step:] <= COMMON_BAND))
            if not len(same):
                break
            a, b = order[same], order[same + step]
            near = np.bitwise_count(codes[a] ^ codes[b]).sum(axis=1) <= COPY_BITS
            low, high = np.minimum(a, b)[near].tolist(), np.maximum(a, b)[near].tolist()
            found.update(zip(low, high, strict=True))
    return sorted(found)


def _mostly_followed(
    faces: list[int], followed: set[int], d: np.ndarray, rule: DecisionRule
) -> bool:
    within = [i for i in faces if d[i] <= rule.expand_reach]
    return 2 * sum(i in followed for i in within) > len(within)


def _without_competitor(cohort: Cohort, p: int, near: np.ndarray, rule: DecisionRule) -> np.ndarray:
    """For each near face: True unless a face that is clearly someone else is nearer to it than
    the person's references, by the margin (it is that recurring stranger, not the person)."""
    others = np.flatnonzero(cohort.distances[:, p] > rule.possible)
    if not len(others):
        return np.ones(len(near), dtype=bool)
    closest = _min_distances(cohort.encodings[near], cohort.encodings[others])
    return closest >= cohort.distances[near, p] - rule.competitor_margin


def _cohort_stats(
    cohort: Cohort, d: np.ndarray, seeds: np.ndarray, rule: DecisionRule
) -> tuple[float, float]:
    """Mean and spread of the cohort's distances, blended with the prior for a small source."""
    keep = np.ones(len(d), dtype=bool)
    sure = seeds[d[seeds] <= rule.seed_distance]
    if len(sure) >= max(rule.seed_min, rule.seed_share * len(d)):
        # The person is everywhere in this source: their own faces would make the cohort look
        # like them. Take out every near face linked to a sure one before measuring.
        near = np.flatnonzero(d <= rule.possible)
        own = _linked_to(cohort.encodings[near], np.isin(near, sure), rule.group_radius)
        keep[near[own]] = False
    x = d[keep]
    n, n0 = len(x), rule.prior_weight
    mean = (x.sum() + n0 * rule.prior_mean) / (n + n0)
    var = (((x - mean) ** 2).sum() + n0 * (rule.prior_sd**2 + (rule.prior_mean - mean) ** 2)) / (
        n + n0
    )
    return float(mean), float(max(np.sqrt(var), 1e-3))


def _groups(
    encodings: np.ndarray, ordered: np.ndarray, anchor: np.ndarray, rule: DecisionRule
) -> dict[int, int]:
    """Look-alike groups, linear in faces times groups. Group 0 is the person's own.

    Leader clustering from the person's reference centre, closest faces first: a face farther
    than `group_radius` from the person's centre and `stranger_radius` from every other centre
    starts a group. Then a few rounds of k-means settle each face
    with its nearest centre and move the centres to their members' mean (the person's own stays
    tied to the references), so a group is an individual, not the faces nearest the person.
    """
    faces = encodings[ordered].astype(np.float64)
    centres = [anchor.astype(np.float64)]
    for e in faces:
        gaps = np.linalg.norm(np.array(centres) - e, axis=1)
        strangers = gaps[1:].min() if len(gaps) > 1 else np.inf
        if gaps[0] > rule.group_radius and strangers > rule.stranger_radius:
            centres.append(e)
    fixed = anchor.astype(np.float64)
    found = np.zeros(len(faces), dtype=int)
    for _ in range(3):
        found = _nearest(faces, np.array(centres))
        for g in range(len(centres)):
            members = faces[found == g]
            if g == 0:
                centres[0] = (2 * fixed + members.sum(axis=0)) / (2 + len(members))
            elif len(members):
                centres[g] = members.mean(axis=0)
    return dict(zip(ordered.tolist(), found.tolist(), strict=True))


def _numbered(found: dict[int, int]) -> dict[int, int]:
    """Groups numbered 1, 2, ... in the order of their centres: the person's own group first."""
    order = {c: n for n, c in enumerate(sorted(set(found.values())), start=1)}
    return {i: order[c] for i, c in found.items()}


def _nearest(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For each row of a, the index of its nearest row of b."""
    sq = (b * b).sum(axis=1)[None, :] - 2.0 * a @ b.T  # |a|^2 is the same for every b
    return sq.argmin(axis=1)


def _min_distances(
    a: np.ndarray, b: np.ndarray, beyond: float | None = None, skip: _Skip | None = None
) -> np.ndarray:
    """For each row of a, the distance to its nearest row of b (only those farther than
    `beyond`, if given, and not in `skip`), in blocks of both."""
    return _nearest_rows(a, b, beyond, skip)[0]


_Skip = list[np.ndarray | None]  # for each row of a, the rows of b it is not compared with


def _nearest_rows(
    a: np.ndarray, b: np.ndarray, beyond: float | None = None, skip: _Skip | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """For each row of a, the distance to its nearest row of b and that row's index (-1 and
    infinity where none is farther than `beyond` and outside `skip`), in blocks of both: memory
    bounded at any size."""
    a = a.astype(np.float32)
    best = np.full(len(a), np.inf, dtype=np.float32)
    index = np.full(len(a), -1, dtype=int)
    for i in range(0, len(a), _BLOCK):
        rows = a[i : i + _BLOCK]
        rows2 = (rows * rows).sum(axis=1)[:, None]
        for j in range(0, len(b), _BLOCK):
            block = b[j : j + _BLOCK].astype(np.float32)
            sq = rows2 + (block * block).sum(axis=1)[None, :] - 2.0 * rows @ block.T
            if beyond is not None:
                sq[sq <= beyond * beyond] = np.inf
            for r, cols in enumerate(skip[i : i + _BLOCK] if skip is not None else ()):
                if cols is not None:
                    sq[r, cols[(cols >= j) & (cols < j + _BLOCK)] - j] = np.inf
            at = sq.argmin(axis=1)
            low = sq[np.arange(len(rows)), at]
            better = low < best[i : i + _BLOCK]
            best[i : i + _BLOCK][better] = low[better]
            index[i : i + _BLOCK][better] = j + at[better]
    return np.sqrt(np.maximum(best, 0.0)), index


def _linked_to(encodings: np.ndarray, start: np.ndarray, radius: float) -> np.ndarray:
    """The faces reachable from the `start` ones by steps of at most `radius` (breadth first,
    one blocked distance pass per step: no pair list, memory bounded at any size)."""
    reached = start.copy()
    frontier = np.flatnonzero(start)
    while len(frontier):
        rest = np.flatnonzero(~reached)
        if not len(rest):
            break
        step = rest[_min_distances(encodings[rest], encodings[frontier]) <= radius]
        reached[step] = True
        frontier = step
    return reached
