"""
Where a pasted person goes: the placement policies of INPUT.COPY_PASTE.PLACEMENT.

A policy is a function ``(rng, image_size, crop_size, person_boxes, scale_range, flip_prob,
occlude_buffer) -> Placement``; ``image_size`` and ``crop_size`` are (height, width),
``person_boxes`` the (N, 4) boxes (x0, y0, x1, y1) of the target's persons, ``rng`` a
``numpy.random.RandomState`` (or the ``numpy.random`` module, whose state Detectron2 seeds in
each data loader worker).
"""
import numpy as np

from .compositing import Placement

__all__ = ["PLACEMENTS", "place_randomly", "place_to_occlude"]


def _scale_and_flip(rng, image_size, crop_size, scale_range, flip_prob):
    """A scale uniform in ``scale_range``, capped so that the resized crop fits the image, its
    resized size (h', w') and a flip with probability ``flip_prob``."""
    height, width = image_size
    crop_h, crop_w = crop_size
    scale = min(rng.uniform(*scale_range), height / crop_h, width / crop_w)
    new_h = min(height, max(1, int(round(crop_h * scale))))
    new_w = min(width, max(1, int(round(crop_w * scale))))
    return scale, bool(rng.uniform() < flip_prob), new_h, new_w


def place_randomly(rng, image_size, crop_size, person_boxes, scale_range, flip_prob, occlude_buffer):
    """The resized crop anywhere inside the image, every position equally likely."""
    height, width = image_size
    scale, flip, new_h, new_w = _scale_and_flip(rng, image_size, crop_size, scale_range, flip_prob)
    return Placement(scale, flip, int(rng.randint(0, width - new_w + 1)), int(rng.randint(0, height - new_h + 1)))


def place_to_occlude(rng, image_size, crop_size, person_boxes, scale_range, flip_prob, occlude_buffer):
    """
    Next to and over one of the target's persons, as Occlusion Copy & Paste places them: a
    person drawn at random, the crop's center uniform in that person's box grown by
    ``occlude_buffer`` times its width (height) on the left and right (top and bottom), then
    the crop shifted, if it has to, to lie inside the image (the shifted crop still contains
    the drawn center). Without persons, as :func:`place_randomly`.
    """
    person_boxes = np.asarray(person_boxes, dtype=np.float64).reshape(-1, 4)
    if len(person_boxes) == 0:
        return place_randomly(rng, image_size, crop_size, person_boxes, scale_range, flip_prob, occlude_buffer)
    height, width = image_size
    scale, flip, new_h, new_w = _scale_and_flip(rng, image_size, crop_size, scale_range, flip_prob)
    x0, y0, x1, y1 = person_boxes[rng.randint(len(person_boxes))]
    grow_x, grow_y = occlude_buffer * (x1 - x0), occlude_buffer * (y1 - y0)
    center_x = rng.uniform(max(0.0, x0 - grow_x), min(float(width), x1 + grow_x))
    center_y = rng.uniform(max(0.0, y0 - grow_y), min(float(height), y1 + grow_y))
    left = int(np.clip(np.floor(center_x - new_w / 2), 0, width - new_w))
    top = int(np.clip(np.floor(center_y - new_h / 2), 0, height - new_h))
    return Placement(scale, flip, left, top)


# INPUT.COPY_PASTE.PLACEMENT -> policy
PLACEMENTS = {"random": place_randomly, "occlude": place_to_occlude}
