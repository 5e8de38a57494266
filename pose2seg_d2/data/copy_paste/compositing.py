"""
Pasting persons cut out of other images onto an image, with annotations kept true.

Coordinates are Detectron2's: pixel (i, j) spans [i, i + 1] x [j, j + 1]; keypoints are
(x, y, v) in these continuous coordinates, v = 2 visible, 1 labeled but not visible, 0 not
labeled; masks are indexed by pixel, ``mask[y, x]``; boxes are (x0, y0, x1, y1).
"""
from dataclasses import dataclass, field

import cv2
import numpy as np

__all__ = ["PersonCrop", "Placement", "PasteResult", "transform_crop", "mask_boxes", "paste_persons"]


@dataclass(frozen=True)
class PersonCrop:
    """
    One person cut out of its image along its mask.

    Attributes:
        image (ndarray): (h, w, 3) uint8, the pixels of the person's box in its image.
        mask (ndarray): (h, w) bool, the person's (visible) mask in that box.
        keypoints (ndarray): (K, 3) float, x and y in the crop's continuous coordinates
            (the image's minus the box's corner), and v.
        category_id (int): the annotation's category.
        source (dict): where it comes from (``file_name``, ``image_id``, ``id``), for messages.
    """

    image: np.ndarray
    mask: np.ndarray
    keypoints: np.ndarray
    category_id: int = 0
    source: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Placement:
    """
    How one crop is pasted: resized to ``round(h * scale) x round(w * scale)`` pixels (at
    least 1), mirrored left-right when ``flip``, with its top-left pixel at pixel (x0, y0) of
    the target image (integers; the crop may reach outside the image, which cuts it).
    """

    scale: float
    flip: bool
    x0: int
    y0: int


@dataclass(frozen=True)
class PasteResult:
    """
    Attributes:
        image (ndarray): (H, W, 3) uint8, the image with the persons pasted.
        masks (ndarray): (M, H, W) bool, the visible mask of every person kept: the target's
            persons kept, in their order, then the pasted persons kept, in paste order.
        keypoints (ndarray): (M, K, 3) float, their keypoints.
        boxes (ndarray): (M, 4) float, the tight box of each mask (x0, y0, x1, y1): pixels
            x0..x1 - 1 (zeros for an empty mask).
        origin (ndarray): (M,) int, the row's person: i < N is the target's person i, N + p the
            p-th pasted person.
        changed (ndarray): (M,) bool, whether the person's mask lost pixels (always True for
            pasted persons).
    """

    image: np.ndarray
    masks: np.ndarray
    keypoints: np.ndarray
    boxes: np.ndarray
    origin: np.ndarray
    changed: np.ndarray


def transform_crop(crop, placement, flip_indices):
    """
    Resize and mirror a crop as ``placement`` says.

    The crop of h x w pixels becomes h' x w' = round(h * scale) x round(w * scale) (at least
    1): the image bilinearly, the mask bilinearly then thresholded at 0.5, and keypoints
    (x, y) -> (x w' / w, y h' / h), which keeps them on the same pixels (pixel edges map to
    pixel edges). Mirroring takes x to w' - x and swaps the left and right keypoints:
    ``keypoints[k] <- keypoints[flip_indices[k]]``.

    Args:
        crop (PersonCrop): the person.
        placement (Placement): its scale and flip (the offset is not used here).
        flip_indices (sequence[int]): (K,) the keypoint that each keypoint becomes when mirrored.

    Returns:
        tuple: image (h', w', 3) uint8, mask (h', w') bool, keypoints (K, 3) float64 in the
        transformed crop's continuous coordinates.
    """
    h, w = crop.mask.shape
    new_h, new_w = max(1, int(round(h * placement.scale))), max(1, int(round(w * placement.scale)))
    image, mask = crop.image, crop.mask
    if (new_h, new_w) != (h, w):
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        mask = cv2.resize(mask.astype(np.float32), (new_w, new_h), interpolation=cv2.INTER_LINEAR) >= 0.5
    keypoints = np.array(crop.keypoints, dtype=np.float64).reshape(-1, 3)
    keypoints[:, 0] *= new_w / w
    keypoints[:, 1] *= new_h / h
    if placement.flip:
        image, mask = image[:, ::-1], mask[:, ::-1]
        keypoints[:, 0] = new_w - keypoints[:, 0]
        keypoints = keypoints[np.asarray(flip_indices)]
    return np.ascontiguousarray(image), np.ascontiguousarray(mask, dtype=bool), keypoints


def mask_boxes(masks):
    """
    Args:
        masks (ndarray): (M, H, W) bool.

    Returns:
        ndarray: (M, 4) float64 tight boxes (x0, y0, x1, y1) in continuous coordinates, the mask's
        pixels spanning columns x0..x1 - 1 and rows y0..y1 - 1; zeros for an empty mask.
    """
    rows, cols = masks.any(axis=2), masks.any(axis=1)  # (M, H), (M, W)
    height, width = masks.shape[1:]
    boxes = np.stack([
        cols.argmax(axis=1), rows.argmax(axis=1),
        width - cols[:, ::-1].argmax(axis=1), height - rows[:, ::-1].argmax(axis=1),
    ], axis=1).astype(np.float64)  # fmt: skip
    boxes[~rows.any(axis=1)] = 0
    return boxes


def paste_persons(image, masks, keypoints, crops, placements, flip_indices, min_visible):
    """
    Paste ``crops`` onto ``image`` one after the other (each over everything before it) and
    update every person's annotation to what is seen.

    - The image takes each pasted person's pixels where its (transformed) mask is.
    - Every person's mask becomes its visible part: a target person loses the pixels of any
      pasted person, a pasted person those of the persons pasted after it. A pixel pasted over
      then belongs to the top-most pasted person only. (Pixels that two of the target's own
      persons share stay as annotated: which of them is in front is not known.)
    - A person left with fewer than ``min_visible`` times the pixels it had before (its mask
      in ``masks``, or the pasted mask inside the image) is removed, as is any person left
      with none; a target person that had no pixels to begin with is kept.
    - A keypoint (of any person) on a pixel of a person pasted above it goes from v = 2 to
      v = 1: still labeled, no longer visible, as COCO labels occluded joints. Pasted persons
      keep their own flags otherwise, except v = 0 for keypoints that land outside the
      image (as Detectron2's transforms do: x outside [0, W] or y outside [0, H]).
    - Boxes are the tight boxes of the visible masks.

    A pasted person of which less than ``min_visible`` of its transformed mask falls inside
    the image is not pasted at all (its pixels are not drawn either).

    Args:
        image (ndarray): (H, W, 3) uint8, the target image (not modified).
        masks (ndarray): (N, H, W) bool, the target's persons' masks.
        keypoints (ndarray): (N, K, 3) float, their keypoints (continuous coordinates, v).
        crops (sequence[PersonCrop]): P persons to paste, bottom first.
        placements (sequence[Placement]): P placements, one per crop.
        flip_indices (sequence[int]): (K,) the left/right keypoint permutation.
        min_visible (float): in [0, 1], see above.

    Returns:
        PasteResult
    """
    height, width = image.shape[:2]
    masks = np.asarray(masks, dtype=bool).reshape(-1, height, width)
    num_targets, num_pasted = len(masks), len(crops)
    num_keypoints = len(flip_indices)
    keypoints = np.asarray(keypoints, dtype=np.float64).reshape(num_targets, num_keypoints, 3)
    if len(placements) != num_pasted:
        raise ValueError(f"{num_pasted} crops but {len(placements)} placements")

    out = image.copy()
    top = np.full((height, width), -1, dtype=np.int32)  # index of the top-most pasted person, -1 none
    placed = np.zeros((num_pasted, height, width), dtype=bool)
    pasted_keypoints = np.zeros((num_pasted, num_keypoints, 3))
    for p, (crop, placement) in enumerate(zip(crops, placements)):
        crop_image, crop_mask, crop_keypoints = transform_crop(crop, placement, flip_indices)
        if len(crop_keypoints) != num_keypoints:
            raise ValueError(
                f"the pasted person from {crop.source} has {len(crop_keypoints)} keypoints, the "
                f"flip map {num_keypoints}"
            )
        crop_h, crop_w = crop_mask.shape
        x0, y0 = int(placement.x0), int(placement.y0)
        xa, xb, ya, yb = max(0, x0), min(width, x0 + crop_w), max(0, y0), min(height, y0 + crop_h)
        if xa >= xb or ya >= yb:
            continue
        inside = crop_mask[ya - y0:yb - y0, xa - x0:xb - x0]
        if not inside.any() or inside.sum() < min_visible * crop_mask.sum():
            continue
        placed[p, ya:yb, xa:xb] = inside
        out[ya:yb, xa:xb][inside] = crop_image[ya - y0:yb - y0, xa - x0:xb - x0][inside]
        top[ya:yb, xa:xb][inside] = p
        pasted_keypoints[p] = crop_keypoints + [x0, y0, 0]

    # every person's layer: the target's persons lie under everything pasted
    layers = np.concatenate([np.full(num_targets, -1), np.arange(num_pasted)])
    all_masks = np.concatenate([masks, placed])  # (N + P, H, W)
    visible = all_masks & (top[None] <= layers[:, None, None])
    area_before = all_masks.sum(axis=(1, 2))
    area_after = visible.sum(axis=(1, 2))
    is_target = np.arange(num_targets + num_pasted) < num_targets
    keep = ((area_after > 0) & (area_after >= min_visible * area_before)) | (is_target & (area_before == 0))

    all_keypoints = np.concatenate([keypoints, pasted_keypoints])  # (N + P, K, 3)
    x, y, v = all_keypoints[..., 0], all_keypoints[..., 1], all_keypoints[..., 2]
    finite = np.isfinite(x) & np.isfinite(y)
    on_pixel = finite & (x >= 0) & (x < width) & (y >= 0) & (y < height)
    px = np.where(on_pixel, np.floor(np.where(finite, x, 0)), 0).astype(np.int64).clip(0, width - 1)
    py = np.where(on_pixel, np.floor(np.where(finite, y, 0)), 0).astype(np.int64).clip(0, height - 1)
    covered = on_pixel & (top[py, px] > layers[:, None])
    new_v = np.where((v == 2) & covered, 1.0, v)
    in_image = finite & (x >= 0) & (x <= width) & (y >= 0) & (y <= height)
    new_v = np.where(~is_target[:, None] & ~in_image, 0.0, new_v)
    all_keypoints = np.concatenate([all_keypoints[..., :2], new_v[..., None]], axis=-1)

    visible = visible[keep]
    return PasteResult(
        image=out,
        masks=visible,
        keypoints=all_keypoints[keep],
        boxes=mask_boxes(visible),
        origin=np.flatnonzero(keep),
        changed=(area_after < area_before)[keep] | ~is_target[keep],
    )
