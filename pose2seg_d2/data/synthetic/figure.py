"""
Articulated human figures for the synthetic occluded-human benchmark.

A figure is a posed kinematic skeleton (:mod:`.skeleton`) dressed in an outfit
(:mod:`.outfit`) and drawn as primitives (:mod:`.primitives`: tapered limbs with round joints,
a torso polygon, head, hair, hands, feet, clothes; :mod:`.body_parts`) into a label map of
body-part classes; primitives are sorted far to near so self-occlusion looks right. An
in-plane rotation, a scale (the standing height in pixels) and a translation place it in the
image. Every figure has its own build (torso, arm and leg thickness, head size), so that a
skeleton does not determine the silhouette.

Coordinates are continuous image coordinates: pixel (i, j) covers [i, i + 1) x [j, j + 1)
and has its center at (i + 0.5, j + 0.5). Keypoints are (17, 2) in COCO order. The drawing
also puts a 3x3 dot of the figure on the pixel of every keypoint, so each keypoint lies on its
figure's silhouette.
"""
from dataclasses import dataclass, field

import numpy as np

from .body_parts import ProjectedBody, add_bag, add_head, add_hem, add_limbs, add_torso
from .outfit import sample_outfit
from .primitives import SKIN, SimilarityTransform
from .skeleton import POSE_KIND_PROBS, POSE_KINDS, pose_skeleton, sample_joint_angles, sample_proportions, sample_yaw

__all__ = ["Figure", "sample_figure", "draw_figure"]


@dataclass
class Figure:
    """
    A posed figure.

    Attributes:
        keypoints (ndarray): (17, 2) float64, COCO order.
        primitives (list[Circle | Capsule | Polygon]): in draw order (far to near).
        kind (str): the pose kind.
        facing (int): +1 facing right (image +x), -1 facing left.
        attributes (dict): the outfit (``outfit``, ``hair``, ``hat``, ``bag``) and the build
            (``build``, ``arm_width``, ``leg_width``), for statistics.
    """

    keypoints: np.ndarray
    primitives: list = field(default_factory=list)
    kind: str = "standing"
    facing: int = 1
    attributes: dict = field(default_factory=dict)

    def transformed(self, scale, angle_deg, offset):
        """The figure scaled by ``scale``, rotated by ``angle_deg`` (counterclockwise on
        screen) about the origin, then translated by ``offset`` (x, y)."""
        transform = SimilarityTransform.make(scale, angle_deg, offset)
        primitives = [prim.transformed(transform) for prim in self.primitives]
        return Figure(transform.points(self.keypoints), primitives, self.kind, self.facing, dict(self.attributes))

    def box(self):
        """(x0, y0, x1, y1): the extent of the primitives (continuous coordinates)."""
        lo = np.full(2, np.inf)
        hi = np.full(2, -np.inf)
        for prim in self.primitives:
            prim_lo, prim_hi = prim.extent()
            lo, hi = np.minimum(lo, prim_lo), np.maximum(hi, prim_hi)
        return np.concatenate([lo, hi])


def sample_figure(rng, kind=None):
    """
    Sample a figure of standing height about 1, pelvis at the origin.

    Args:
        rng (numpy.random.Generator)
        kind (str or None): one of :data:`POSE_KINDS`; sampled when None.

    Returns:
        Figure: use :meth:`Figure.transformed` to place it.
    """
    if kind is None:
        kind = str(rng.choice(POSE_KINDS, p=POSE_KIND_PROBS))
    angles = sample_joint_angles(rng, kind)
    body = sample_proportions(rng)
    outfit = sample_outfit(rng)
    view = ProjectedBody.of(pose_skeleton(angles, body, sample_yaw(rng, kind)))
    parts = []  # (depth, primitive)
    add_limbs(parts, rng, view, body, outfit)
    corners = add_torso(parts, view, body, outfit)
    add_hem(parts, rng, view, body, outfit, kind, corners)
    add_head(parts, rng, view, body, outfit)
    add_bag(parts, rng, view, body, outfit)
    parts.sort(key=lambda item: item[0])  # stable: equal depths keep their order
    attributes = {
        "outfit": outfit.outfit,
        "hair": outfit.hair,
        "hat": outfit.hat,
        "bag": outfit.bag,
        "build": round(float(body.build), 3),
        "arm_width": round(float(body.arm_width), 3),
        "leg_width": round(float(body.leg_width), 3),
    }
    return Figure(view.keypoints, [prim for _, prim in parts], kind, view.facing, attributes)


def _dot_keypoints(label_map, keypoints):
    """A 3x3 dot of skin on the background pixels around every keypoint's pixel that is not
    on the figure yet (keypoints outside the image are left out)."""
    h, w = label_map.shape
    for x, y in np.floor(keypoints).astype(np.int64):
        if 0 <= x < w and 0 <= y < h:
            y0, y1, x0, x1 = max(y - 1, 0), min(y + 2, h), max(x - 1, 0), min(x + 2, w)
            patch = label_map[y0:y1, x0:x1]
            if label_map[y, x] == 0:
                patch[patch == 0] = SKIN


def draw_figure(label_map, figure, dot_keypoints=True):
    """
    Draw ``figure`` into ``label_map`` (in place), primitives in order.

    Args:
        label_map (ndarray): (H, W) uint8, body-part classes.
        figure (Figure): in image coordinates.
        dot_keypoints (bool): also draw a 3x3 dot (skin) on the pixel of every keypoint
            inside the image that is off the figure, so it lies on the figure.

    Returns:
        ndarray: ``label_map``.
    """
    for prim in figure.primitives:
        prim.draw(label_map)
    if dot_keypoints:
        _dot_keypoints(label_map, figure.keypoints)
    return label_map
