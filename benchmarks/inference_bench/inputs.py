"""Synthetic inputs: a random-noise BGR image of a 4:3 aspect and plausible persons on it."""
import cv2
import numpy as np
import torch
from detectron2.structures import BitMasks, Boxes, Instances, Keypoints

from pose2seg_d2.pose import COCO_PERSON_LIMBS, PoseTemplates
from pose2seg_d2.utils import default_templates_file

ASPECT = 4.0 / 3.0


def image_size(short_side):
    """(height, width) of a landscape 4:3 image."""
    return short_side, int(round(short_side * ASPECT))


def make_persons(num, height, width, rng, templates=None):
    """
    ``num`` plausible skeletons: (num, 17, 3) float32 keypoints (x, y, v) in the image's
    continuous coordinates, and (num, height, width) bool masks drawn around them.
    """
    if templates is None:
        templates = PoseTemplates.load(default_templates_file())
    base = templates.templates.numpy()
    keypoints = np.zeros((num, 17, 3), np.float32)
    masks = np.zeros((num, height, width), bool)
    short = min(height, width)
    for i in range(num):
        t = base[rng.integers(len(base))]
        tall = rng.uniform(0.15, 0.6) * short
        angle = rng.uniform(-0.3, 0.3)
        c, s = np.cos(angle) * tall, np.sin(angle) * tall
        xy = (t[:, :2] - 0.5) @ np.array([[c, s], [-s, c]])
        center = rng.uniform([tall / 2, tall / 2], [width - tall / 2, height - tall / 2])
        xy = xy + center + rng.normal(0, 0.01 * tall, (17, 2))
        v = np.where(rng.random(17) < 0.2, 1, 2)
        v[(t[:, 2] <= 0) | (rng.random(17) < 0.15)] = 0
        keypoints[i, :, :2] = np.where(v[:, None] > 0, xy, 0)
        keypoints[i, :, 2] = v
        canvas = np.zeros((height, width), np.uint8)
        thick = max(2, int(tall / 12))
        for a, b in COCO_PERSON_LIMBS:
            if t[a, 2] > 0 and t[b, 2] > 0:
                cv2.line(canvas, tuple(int(q) for q in xy[a]), tuple(int(q) for q in xy[b]), 1, thick)
        masks[i] = canvas > 0
    return keypoints, masks


def make_input(short_side, persons, seed=0, with_targets=False):
    """One Detectron2 input dict: uint8 BGR noise image, ``instances`` with ``gt_keypoints``
    (and, for training, ``gt_masks``, ``gt_boxes``, ``gt_classes``)."""
    rng = np.random.default_rng(seed)
    height, width = image_size(short_side)
    image = torch.from_numpy(rng.integers(0, 256, (3, height, width), dtype=np.uint8))
    keypoints, masks = make_persons(persons, height, width, rng)
    instances = Instances((height, width))
    instances.gt_keypoints = Keypoints(torch.from_numpy(keypoints))
    if with_targets:
        bit = BitMasks(torch.from_numpy(masks))
        instances.gt_masks = bit
        instances.gt_boxes = Boxes(bit.get_bounding_boxes().tensor)
        instances.gt_classes = torch.zeros(persons, dtype=torch.long)
    return {"image": image, "height": height, "width": width, "instances": instances}
