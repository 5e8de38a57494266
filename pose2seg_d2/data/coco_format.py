"""
The COCO person category and mask encoding shared by the dataset converters and the
synthetic generator.

Conventions of COCO-style person files written here: one category, ``person`` with id 1,
the 17 COCO keypoint names in COCO order and COCO's 1-based skeleton; keypoints are flat
lists of 51 numbers (x, y, v) with v = 2 visible, 1 labeled but not visible, 0 not labeled;
boxes are [x, y, w, h]; masks are compressed RLE ``{"size": [h, w], "counts": str}``.
"""
import json
import os

import numpy as np
import pycocotools.mask as mask_util

from ..pose.keypoints import COCO_PERSON_KEYPOINT_NAMES

__all__ = [
    "COCO_PERSON_SKELETON",
    "person_category",
    "encode_mask",
    "decode_segmentation",
    "load_json",
    "dump_json",
]

# COCO's ``skeleton`` field of the person category: 1-based keypoint index pairs, in the
# order of person_keypoints_*2017.json (the OCHuman conversion writes the same list).
COCO_PERSON_SKELETON = (
    (16, 14), (14, 12), (17, 15), (15, 13), (12, 13), (6, 12), (7, 13), (6, 7), (6, 8), (7, 9),
    (8, 10), (9, 11), (2, 3), (1, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 7),
)  # fmt: skip


def person_category():
    """The COCO person category dict (``supercategory``, ``id`` 1, ``name``, ``skeleton``,
    ``keypoints``), keys in the order of the OCHuman release's COCO-style files."""
    return {
        "supercategory": "person",
        "id": 1,
        "name": "person",
        "skeleton": [list(pair) for pair in COCO_PERSON_SKELETON],
        "keypoints": list(COCO_PERSON_KEYPOINT_NAMES),
    }


def encode_mask(mask):
    """
    Args:
        mask (ndarray): (H, W) binary mask (any integer or bool dtype).

    Returns:
        dict: compressed RLE ``{"size": [H, W], "counts": str}`` (JSON-serializable).
    """
    rle = mask_util.encode(np.asfortranarray(mask, dtype=np.uint8))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def decode_segmentation(segm, height, width):
    """
    Decode a COCO segmentation (polygon list, uncompressed or compressed RLE) or take a
    Detectron2 dataset dict's (height, width) binary mask array as it is.

    Returns:
        ndarray: (height, width) uint8 in {0, 1}.
    """
    if isinstance(segm, np.ndarray):
        return segm.astype(np.uint8)
    if isinstance(segm, list):
        rle = mask_util.merge(mask_util.frPyObjects(segm, height, width))
    elif isinstance(segm["counts"], list):
        rle = mask_util.frPyObjects(segm, *segm["size"])
    else:
        rle = dict(segm)
        if isinstance(rle["counts"], str):
            rle["counts"] = rle["counts"].encode("ascii")
    return mask_util.decode(rle)


def load_json(path, what, how_to_get=None):
    """
    Read a JSON file, with errors that name the file (and how to get it when missing).

    Args:
        path (str): the file.
        what (str): what the file is, for the messages (e.g. "OCHuman native annotations").
        how_to_get (str or None): appended to the message when the file is missing.
    """
    if not os.path.isfile(path):
        msg = f"{what} not found: {path}"
        if how_to_get:
            msg += f". {how_to_get}"
        raise FileNotFoundError(msg)
    with open(path) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e})") from e


def dump_json(data, path, compact=True):
    """Write ``data`` as JSON (creating the folder); ``compact`` drops the blanks."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        if compact:
            json.dump(data, f, separators=(",", ":"))
        else:
            json.dump(data, f)
    os.replace(tmp, path)
    return path
