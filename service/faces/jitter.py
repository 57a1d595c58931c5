"""Jittered copies of an aligned face chip, made the way dlib's jitter_image makes them.

A reference encoding is the mean over several slightly moved, scaled, turned and mirrored copies
of the face: steadier than one pass. dlib does this with its own random generator, which cannot be
reproduced outside dlib; the same perturbations on numpy give an equivalent reference at a tenth
of dlib's cost here (see tests/faces/test_jitter.py for how close).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps

# dlib/image_transforms/interpolation.h, jitter_image()
MAX_ROTATION_DEGREES = 3.0
MIN_OBJECT_HEIGHT, MAX_OBJECT_HEIGHT = 0.97, 0.99999
TRANSLATE_AMOUNT = 0.02
BORDER = 3  # shrink_rect(get_rect(img), 3)


def jittered(chip: npt.NDArray[np.uint8], count: int, seed: int = 0) -> npt.NDArray[np.uint8]:
    """`count` perturbed copies of a square RGB chip, as an (count, size, size, 3) array."""
    rng = np.random.default_rng(seed)
    size = chip.shape[0]
    image = Image.fromarray(chip)
    inner = size - 2 * BORDER
    copies = []
    for _ in range(count):
        shift_x, shift_y = rng.uniform(-TRANSLATE_AMOUNT, TRANSLATE_AMOUNT, 2) * inner
        box = inner / rng.uniform(MIN_OBJECT_HEIGHT, MAX_OBJECT_HEIGHT)
        angle = math.radians(rng.uniform(-MAX_ROTATION_DEGREES, MAX_ROTATION_DEGREES))
        crop = image.transform(
            (size, size),
            Image.Transform.AFFINE,
            _affine(size, box, angle, shift_x, shift_y),
            resample=Image.Resampling.BILINEAR,
        )
        if rng.random() > 0.5:
            crop = ImageOps.mirror(crop)
        copies.append(np.asarray(crop))
    return np.stack(copies)


def _affine(
    size: int, box: float, angle: float, shift_x: float, shift_y: float
) -> tuple[float, float, float, float, float, float]:
    """PIL's output-to-input mapping: a `box`-wide square around the shifted centre, turned by
    `angle`, stretched onto `size` pixels."""
    scale = box / size
    cos, sin = math.cos(angle) * scale, math.sin(angle) * scale
    middle = (size - 1) / 2
    centre_x, centre_y = middle + shift_x, middle + shift_y
    return (
        cos,
        -sin,
        centre_x - cos * middle + sin * middle,
        sin,
        cos,
        centre_y - sin * middle - cos * middle,
    )
