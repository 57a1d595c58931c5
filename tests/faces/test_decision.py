"""The decision on a whole source: cohort normalisation, recurring strangers, groups.

Encodings here are built in 128 dimensions at chosen distances, so each test states its geometry;
the same rule on real photos is measured by models/calibrate.py and `make bench`.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from service.faces.decision import COPY_BITS, Cohort, DecisionRule, _Copies, decide

RULE = DecisionRule.load()  # the rule as shipped
rng = np.random.default_rng(7)


def direction() -> np.ndarray:
    v = rng.normal(size=128)
    return v / np.linalg.norm(v)


def at(centre: np.ndarray, distance: float) -> np.ndarray:
    """A point at `distance` from `centre` in a random direction (nearly orthogonal to others)."""
    return centre + distance * direction()


OWNER = direction() * 0.5


def cohort(
    faces: list[np.ndarray] | np.ndarray, centres: tuple[np.ndarray, ...] = (OWNER,)
) -> Cohort:
    """The faces, with their distances to each enrolled person's centre (the owner's alone by
    default)."""
    encodings = np.array(faces, dtype=np.float32)
    distances = np.stack([np.linalg.norm(encodings - c, axis=1) for c in centres], axis=1)
    return Cohort(encodings, distances.astype(np.float32))


def strangers(n: int, mean: float) -> list[np.ndarray]:
    """Faces of other people, their distances to the owner spread as a real crowd's are."""
    return [at(OWNER, float(np.clip(rng.normal(mean, 0.07), 0.61, 1.3))) for _ in range(n)]


def proposed(faces: list[np.ndarray]) -> set[int]:
    return {p.face for p in decide(cohort(faces), ["owner"], OWNER[None, :], RULE)}


def test_it_proposes_the_owner_among_many_strangers() -> None:
    faces = [at(OWNER, 0.38), at(OWNER, 0.56), *strangers(200, 0.85)]
    found = decide(cohort(faces), ["owner"], OWNER[None, :], RULE)
    assert {(p.face, p.band) for p in found} == {(0, "strong"), (1, "possible")}


def test_it_is_stricter_where_look_alikes_crowd() -> None:
    # The same face at 0.54 stands out among far strangers, not among a crowd of look-alikes.
    sparse = [at(OWNER, 0.54), *strangers(200, 0.85)]
    crowded = [at(OWNER, 0.54), *strangers(200, 0.62)]
    assert proposed(sparse) == {0}
    assert proposed(crowded) == set()


def test_it_does_not_propose_a_stranger_whose_own_photos_are_nearer() -> None:
    stranger = at(OWNER, 0.68)
    toward_owner = stranger + 0.14 * (OWNER - stranger) / np.linalg.norm(OWNER - stranger)
    faces = [toward_owner, *(at(stranger, 0.2) for _ in range(5)), *strangers(200, 0.85)]
    assert np.linalg.norm(toward_owner - OWNER) < 0.56  # near enough to be considered at all
    assert proposed(faces) == set()


def test_it_still_finds_an_owner_who_is_in_half_the_photos() -> None:
    # A spouse's export: the owner's own faces must not make the cohort look like the owner.
    own = [at(OWNER, rng.uniform(0.25, 0.35)) for _ in range(150)]
    found = proposed([*own, *strangers(150, 0.85)])
    assert len(found & set(range(150))) >= 140
    assert found <= set(range(150))


def test_it_is_careful_with_a_tiny_source() -> None:
    # Two photos say nothing about the crowd: the calibrated prior decides, and it is strict.
    assert proposed([at(OWNER, 0.35), at(OWNER, 0.85)]) == {0}
    assert proposed([at(OWNER, 0.57), at(OWNER, 0.85)]) == set()


def test_it_never_groups_the_owner_with_a_stranger() -> None:
    stranger = at(OWNER, 0.5)
    faces = [
        *(at(OWNER, 0.3) for _ in range(6)),
        *(at(stranger, 0.15) for _ in range(4)),
        *strangers(400, 0.95),
    ]
    proposals = decide(cohort(faces), ["owner"], OWNER[None, :], RULE)
    groups = {p.face: p.group for p in proposals}
    owner_groups = {groups[i] for i in range(6) if i in groups}
    stranger_groups = {groups[i] for i in range(6, 10) if i in groups}
    assert owner_groups == {1}  # the closest faces come first
    assert not owner_groups & stranger_groups


def test_it_ships_the_rule_its_defaults_describe() -> None:
    assert DecisionRule.load() == DecisionRule()


def test_it_gives_each_face_to_its_nearest_person() -> None:
    other = direction() * 0.5
    faces = [at(OWNER, 0.3), at(other, 0.3), *strangers(100, 0.9)]
    anchors = np.array([OWNER, other])
    found = decide(cohort(faces, (OWNER, other)), ["alice", "ben"], anchors, RULE)
    assert {(p.face, p.person) for p in found} == {(0, "alice"), (1, "ben")}


def test_a_face_in_the_possible_band_is_a_decision_of_its_own() -> None:
    # Confirming the owner's group confirms all of it: a face at 0.55, which a stranger's blurred
    # look-alike can be, must not ride along.
    faces = [*(at(OWNER, 0.3) for _ in range(6)), at(OWNER, 0.55), *strangers(300, 0.9)]
    found = {p.face: p for p in decide(cohort(faces), ["owner"], OWNER[None, :], RULE)}
    assert set(found) == set(range(7))
    assert {found[i].group for i in range(6)} == {1} and not any(found[i].alone for i in range(6))
    assert found[6].alone and found[6].group not in {1}


def test_a_face_nearly_as_near_another_enrolled_person_is_a_decision_of_its_own() -> None:
    # Two look-alike relatives enrolled in one circle, their centres 0.3 apart: a photo of the
    # sibling that lands a hair nearer the owner is proposed, but must not be confirmed with the
    # owner's group, while the owner's clear photos still are one decision.
    apart = direction()
    sibling = OWNER + 0.3 * apart
    aside = direction()
    aside -= (aside @ apart) * apart  # square to the line between them
    between = OWNER + 0.14 * apart + 0.33 * aside / np.linalg.norm(aside)  # 0.02 nearer the owner
    faces = [*(at(OWNER, 0.3) for _ in range(6)), between, *strangers(300, 0.9)]
    family = cohort(faces, (OWNER, sibling))
    lead = family.distances[6, 1] - family.distances[6, 0]
    assert family.distances[6, 0] < RULE.strong and 0 < lead < RULE.ambiguity_margin
    anchors = np.array([OWNER, sibling])
    found = {p.face: p for p in decide(family, ["alice", "sis"], anchors, RULE)}
    assert 6 in found and found[6].alone
    assert {found[i].group for i in range(6)} == {1} and not any(found[i].alone for i in range(6))
    assert found[6].group not in {1}
    # One person enrolled: nobody to confuse the face with, so it joins the group as before.
    alone = {p.face: p for p in decide(cohort(faces), ["alice"], OWNER[None, :], RULE)}
    assert 6 in alone and not alone[6].alone


def test_a_face_nearest_to_a_look_alike_strangers_photos_is_a_decision_of_its_own() -> None:
    # A look-alike stranger 0.45 from the owner, with photos of his own. One photo of him lands
    # 0.2 from the references, nearer the owner's group than his own, so the grouping puts it
    # in the owner's group; but its nearest look-alike is one of his photos. It joins no group,
    # and confirming the owner's group does not confirm it.
    apart, aside = direction(), direction()
    aside -= (aside @ apart) * apart
    aside /= np.linalg.norm(aside)
    stranger = OWNER + 0.45 * apart
    his = [OWNER + 0.35 * apart + 0.17 * aside, *(at(stranger, 0.2) for _ in range(4))]
    toward = OWNER + 0.2 * apart
    faces = [*(at(OWNER, 0.15) for _ in range(6)), toward, *his, *strangers(300, 0.9)]
    c = cohort(faces)
    gaps = np.linalg.norm(c.encodings[:11] - c.encodings[6], axis=1)
    assert RULE.copy_distance < gaps[7] < gaps[:6].min()  # his photo is its nearest look-alike
    found = {p.face: p for p in decide(c, ["owner"], OWNER[None, :], RULE)}
    assert {found[i].group for i in range(6)} == {1} and not any(found[i].alone for i in range(6))
    assert 6 in found and found[6].alone and found[6].group != 1
    assert not any(found[i].group == 1 for i in range(7, 11) if i in found)


def test_a_person_is_proposed_once_a_photo() -> None:
    # A look-alike beside the owner in one group photo: both are near, but only one of them can
    # be the owner, and the nearer is kept. Faces whose photo is not known stay apart.
    faces = [*(at(OWNER, 0.3) for _ in range(4)), at(OWNER, 0.4), *strangers(300, 0.9)]
    photos = ["a.jpg", "b.jpg", "c.jpg", "d.jpg", "a.jpg", *[f"s{i}.jpg" for i in range(300)]]
    everyone = {p.face for p in decide(cohort(faces), ["owner"], OWNER[None, :], RULE)}
    assert {0, 4} <= everyone
    once = {p.face for p in decide(cohort(faces), ["owner"], OWNER[None, :], RULE, photos)}
    assert once == everyone - {4}
    unknown = [None if i in (0, 4) else photo for i, photo in enumerate(photos)]
    assert {p.face for p in decide(cohort(faces), ["owner"], OWNER[None, :], RULE, unknown)} == (
        everyone
    )
    # Asked for, the farther face comes too, waiting behind the nearer one of its photo, in the
    # group it would have joined.
    waiting = decide(cohort(faces), ["owner"], OWNER[None, :], RULE, photos, standby=True)
    front = {p.face: p for p in waiting if p.behind is None}
    [second] = [p for p in waiting if p.behind is not None]
    assert set(front) == once and second.face == 4 and second.behind == 0
    assert second.group == front[0].group == 1 and second.distance > front[0].distance


def test_it_reaches_past_possible_for_a_face_like_the_ones_it_kept() -> None:
    # The reference is off the person's centre: their sharp photos sit around a centre 0.35 away,
    # and a dark photo of them drifts to 0.62 of the reference, but stays near that centre.
    u, v = direction(), direction()
    v -= (v @ u) * u
    v /= np.linalg.norm(v)
    centre = OWNER + 0.35 * u
    drifted = OWNER + 0.45 * u + 0.43 * v
    assert 0.6 < np.linalg.norm(drifted - OWNER) <= RULE.expand_reach
    faces = [*(at(centre, 0.2) for _ in range(10)), drifted, *strangers(300, 0.9)]
    assert 10 in proposed(faces)
    shorter = replace(RULE, expand_reach=RULE.possible)
    assert 10 not in {p.face for p in decide(cohort(faces), ["owner"], OWNER[None, :], shorter)}
    # A stranger as far from the reference, but unlike the person's photos, stays out.
    stranger = at(OWNER, 0.62)
    assert np.linalg.norm(stranger - centre) > RULE.expand_radius
    assert 10 not in proposed(
        [*(at(centre, 0.2) for _ in range(10)), stranger, *strangers(300, 0.9)]
    )


def _off_centre_person() -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """The reference off the person's centre (their sharp photos around a centre 0.35 away, as
    above), and a direction away from both."""
    u, w = direction(), direction()
    w -= (w @ u) * u
    w /= np.linalg.norm(w)
    centre = OWNER + 0.35 * u
    return centre, w, [at(centre, 0.2) for _ in range(10)]


def test_it_keeps_a_farther_face_whose_nearest_look_alike_is_the_persons() -> None:
    # A blurred photo of the person: 0.63 from the reference, 0.52 from the centre the kept faces
    # sharpen (past expand_radius), and nearer to the person's own photos than to anyone else's.
    centre, w, sharp = _off_centre_person()
    blurred = centre + 0.52 * w
    assert RULE.possible < np.linalg.norm(blurred - OWNER) <= RULE.expand_reach
    faces = [*sharp, blurred, *strangers(300, 0.9)]
    assert 10 in proposed(faces)
    without = replace(RULE, neighbour_radius=RULE.expand_radius)
    assert 10 not in {p.face for p in decide(cohort(faces), ["owner"], OWNER[None, :], without)}
    # The same photo twice (a re-upload): each copy's nearest other face is the other copy, which
    # is no look-alike of it. Both are kept.
    assert {10, 11} <= proposed([*sharp, blurred, blurred.copy(), *strangers(300, 0.9)])


def test_it_leaves_out_a_farther_face_whose_own_photos_are_nearer() -> None:
    # A stranger at the same place, who recurs: his other photos are nearer to him than the
    # person's are. Query expansion does not follow him.
    centre, w, sharp = _off_centre_person()
    him = centre + 0.52 * w
    his_others = [at(him, 0.3) for _ in range(3)]
    assert all(np.linalg.norm(o - OWNER) > RULE.expand_reach for o in his_others)
    assert 10 not in proposed([*sharp, him, *his_others, *strangers(300, 0.9)])


def test_a_photo_of_the_person_shared_many_times_is_not_a_recurring_stranger() -> None:
    # One photo of the person, apart from the others (0.5 from their centre, 0.61 from the
    # reference), posted six times: six copies that form a look-alike group of their own, whose
    # median does not stand out from this crowd. Each copy's nearest look-alike (copies aside) is
    # one of the person's photos, so the group is the person's, not a stranger's.
    centre, w, sharp = _off_centre_person()
    shared = centre + 0.5 * w
    copies = [at(shared, 0.03) for _ in range(6)]
    crowd = strangers(300, 0.75)
    assert set(range(10, 16)) <= proposed([*sharp, *copies, *crowd])
    # Six different photos of a stranger there are nearer to each other than to the person's:
    # his group is judged as a recurring stranger's, and none of it is proposed.
    his = [at(shared, 0.25) for _ in range(6)]
    assert not set(range(10, 16)) & proposed([*sharp, *his, *crowd])


def test_a_photo_exported_twice_counts_once_when_a_look_alike_group_is_judged() -> None:
    # Two photos of the person, apart from the references (0.52 and 0.585), and a copy of the
    # second saved back from a chat (0.59; 0.22 from it, so no copy to `copy_distance`). Three
    # faces make a look-alike group whose median does not stand out from this crowd: without
    # the photos' fingerprints it is judged a recurring stranger, and none of it is proposed.
    q, _ = np.linalg.qr(np.stack([direction() for _ in range(3)], axis=1))
    u, v, w = q.T
    second = np.cos(np.radians(40)) * u + np.sin(np.radians(40)) * v
    copy = np.cos(np.radians(21.6)) * second + np.sin(np.radians(21.6)) * w
    faces = [OWNER + 0.52 * u, OWNER + 0.585 * second, OWNER + 0.59 * copy, *strangers(300, 0.69)]
    assert 0.2 < np.linalg.norm(faces[1] - faces[2]) < np.linalg.norm(faces[0] - faces[1])
    c = cohort(faces)
    assert not {0, 1, 2} & {p.face for p in decide(c, ["owner"], OWNER[None, :], RULE)}
    # With them, the copy is the second photo again: two photos are too few to be a stranger
    # who recurs, and each face is judged on its own.
    first, again = bytes(range(32)), bytes(range(100, 132))
    prints = [first, again, again] + [None] * 300
    found = {p.face for p in decide(c, ["owner"], OWNER[None, :], RULE, prints=prints)}
    assert 0 in found


def test_a_copy_of_a_photo_is_no_look_alike_of_its_face() -> None:
    # A blurred photo of the person, followed by its nearest look-alike (one of the person's
    # photos, as above), and the copy of it saved back from a chat: re-compression moved the
    # face 0.3 (night shots move up to 0.37), past `copy_distance`, so by encodings alone the
    # copy is the photo's nearest look-alike, and it is no kept face: neither is followed.
    centre, w, sharp = _off_centre_person()
    blurred = centre + 0.52 * w
    chat_copy = at(blurred, 0.3)
    faces = [*sharp, blurred, chat_copy, *strangers(300, 0.9)]
    gaps = np.linalg.norm(np.array(faces[:10]) - blurred, axis=1)
    assert RULE.copy_distance < 0.3 < gaps.min()
    c = cohort(faces)
    assert 10 not in {p.face for p in decide(c, ["owner"], OWNER[None, :], RULE)}
    # The fingerprints tell the copy (3 bits from its photo's): copies aside, the blurred face's
    # nearest look-alike is the person's, and it is kept.
    photo = bytes(range(32))
    copied = bytes([photo[0] ^ 0b111, *photo[1:]])
    prints = [bytes([i] * 32) for i in range(10)] + [photo, copied] + [None] * 300
    assert 10 in {p.face for p in decide(c, ["owner"], OWNER[None, :], RULE, prints=prints)}


def test_it_finds_the_copies_of_a_photo_among_many_by_their_fingerprints() -> None:
    # 500 photos, a third of them sharing a flat first band (a white page, a sky), and a copy of
    # every tenth with 1-12 bits changed: each copy is found, and no other pair.
    prints = [bytearray(rng.integers(0, 256, 32, dtype=np.uint8).tobytes()) for _ in range(500)]
    for p in prints[::3]:
        p[0:2] = b"\0\0"
    copies = []
    for n, p in enumerate(prints[::10]):
        copy = np.unpackbits(np.frombuffer(bytes(p), np.uint8))
        flipped = rng.choice(256, size=1 + n % COPY_BITS, replace=False)
        copy[flipped] ^= 1
        copies.append(np.packbits(copy).tobytes())
    found = _Copies([bytes(p) for p in prints] + copies)
    photos = [found.photo(i) for i in range(550)]
    pairs = {tuple(sorted((p, c))) for p in set(photos) if p is not None for c in found.copies(p)}
    expected = {tuple(sorted((photos[10 * n], photos[500 + n]))) for n in range(50)}
    assert pairs == expected
