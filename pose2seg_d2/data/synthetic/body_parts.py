"""
The primitives of a synthetic figure's body parts and clothes, in the image plane of its
projected :class:`~.skeleton.Skeleton` (units of the standing height).

Each ``add_*`` function appends ``(depth, primitive)`` pairs to a list (larger depth is
nearer); the figure sorts them far to near with a stable sort, so parts of equal depth are
drawn in the order they were added.
"""
import math
from dataclasses import dataclass

import numpy as np

from .primitives import BAG, COAT, HAIR, HAT, PANTS, SHIRT, SHOES, SKIN, SKIRT, Capsule, Circle, Polygon
from .primitives import circle_points, convex_hull
from .skeleton import KEYPOINT_INDEX, SIDE_AXIS

__all__ = ["ProjectedBody", "add_limbs", "add_torso", "add_hem", "add_head", "add_bag"]


@dataclass
class ProjectedBody:
    """
    A skeleton seen by the camera.

    Attributes:
        skeleton (Skeleton): the 3D skeleton (its ``project`` maps body-frame points).
        keypoints (ndarray): (17, 2) projected keypoints, COCO order.
        depth (dict[str, float]): each keypoint's depth by name.
        head, neck, pelvis (ndarray): (2,) projected; ``head_depth``, ``neck_depth`` theirs.
        facing (int): +1 facing image right, -1 facing left.
    """

    skeleton: object
    keypoints: np.ndarray
    depth: dict
    head: np.ndarray
    head_depth: float
    neck: np.ndarray
    neck_depth: float
    pelvis: np.ndarray
    facing: int

    @classmethod
    def of(cls, skeleton):
        keypoints, depth = skeleton.keypoints()
        head, head_depth = skeleton.project(skeleton.head)
        neck, neck_depth = skeleton.project(skeleton.neck)
        pelvis, _ = skeleton.project(skeleton.pelvis)
        facing = 1 if skeleton.yaw > 0 else -1
        return cls(skeleton, keypoints, depth, head, head_depth, neck, neck_depth, pelvis, facing)

    def point(self, name):
        """(2,) the projected keypoint ``name``."""
        return self.keypoints[KEYPOINT_INDEX[name]]

    def limb(self, a, b, r0, r1, label):
        """(depth, Capsule) from keypoint ``a`` to keypoint ``b`` at their mean depth."""
        return (self.depth[a] + self.depth[b]) / 2, Capsule(self.point(a), self.point(b), r0, r1, label)


def _unit(v):
    norm = float(np.hypot(*v))
    return v / norm if norm > 1e-9 else np.array([0.0, 1.0])


def _point_along(path, distance):
    """The point at arc length ``distance`` along the polyline ``path`` (its end if shorter)."""
    for a, b in zip(path[:-1], path[1:]):
        step = float(np.hypot(*(b - a)))
        if distance <= step and step > 0:
            return a + (b - a) * (distance / step)
        distance -= step
    return path[-1]


def add_limbs(parts, rng, view, body, outfit):
    """Arms (sleeves or skin), hands, legs (trousers, tights or skin) and shoes."""
    leg_label = SKIN if outfit.legs_covered and rng.random() < 0.5 else PANTS  # bare legs or tights
    sleeve_label = COAT if outfit.outfit == "coat" else SHIRT
    sleeve_width = 1.2 if outfit.outfit == "coat" else 1.0
    sleeves = outfit.outfit == "coat" or rng.random() < 0.5  # long sleeves
    for side in ("left", "right"):
        aw = body.arm_width * sleeve_width
        parts.append(view.limb(f"{side}_shoulder", f"{side}_elbow", 0.033 * aw, 0.027 * aw, sleeve_label))
        forearm_label = sleeve_label if sleeves else SKIN
        parts.append(view.limb(f"{side}_elbow", f"{side}_wrist", 0.027 * aw, 0.021 * aw, forearm_label))
        hand = Circle(view.point(f"{side}_wrist"), 0.026 * body.arm_width, SKIN)
        parts.append((view.depth[f"{side}_wrist"] + 1e-3, hand))
        lw = body.leg_width * (0.75 if leg_label == SKIN else 1.0)
        parts.append(view.limb(f"{side}_hip", f"{side}_knee", 0.055 * lw, 0.042 * lw, leg_label))
        parts.append(view.limb(f"{side}_knee", f"{side}_ankle", 0.042 * lw, 0.03 * lw, leg_label))
        ankle = view.point(f"{side}_ankle")
        toe = ankle + np.array([view.facing * 0.05, 0.012])
        parts.append((view.depth[f"{side}_ankle"] + 1e-3, Capsule(ankle, toe, 0.026, 0.02, SHOES)))


def add_torso(parts, view, body, outfit):
    """
    The torso: a polygon through the widened shoulders and hips over two capsules that give
    it depth, and the trousers' hips unless a dress or a skirt covers them.

    Returns:
        ndarray: (4, 2) the polygon's corners: left shoulder, left hip, right hip, right shoulder.
    """
    w = body.build
    torso_label = SKIRT if outfit.outfit == "dress" else COAT if outfit.outfit == "coat" else SHIRT
    joints = view.skeleton.joints
    corners3 = [
        joints["left_shoulder"] + 0.025 * w * SIDE_AXIS,
        joints["left_hip"] + 0.04 * w * SIDE_AXIS,
        joints["right_hip"] - 0.04 * w * SIDE_AXIS,
        joints["right_shoulder"] - 0.025 * w * SIDE_AXIS,
    ]
    corners = np.array([view.skeleton.project(c)[0] for c in corners3])
    waist = 0.5 * (corners[1] + corners[2])
    shirt_bottom = view.pelvis + 0.25 * (view.neck - view.pelvis)
    parts.append((0.0, Capsule(shirt_bottom, view.neck, 0.065 * w, 0.06 * w, torso_label)))
    lower_label = PANTS if not outfit.legs_covered else SKIRT
    parts.append((0.0, Capsule(view.pelvis, shirt_bottom, 0.06 * w, 0.065 * w, lower_label)))
    parts.append((0.001, Polygon(corners, torso_label)))
    if not outfit.legs_covered:
        hips = np.array([corners[1], corners[2], 0.5 * (corners[2] + corners[3]), 0.5 * (corners[0] + corners[1])])
        hips[2:] = waist + 0.35 * (hips[2:] - waist) + 0.2 * (view.neck - view.pelvis)
        parts.append((0.002, Polygon(hips, PANTS)))
    return corners


def add_hem(parts, rng, view, body, outfit, kind, corners):
    """A skirt, a dress's skirt or a coat's tails: one convex polygon from the torso down to
    a hem along each leg from the hip, so that it follows the legs' pose. Nothing for
    trousers. ``corners``: :func:`add_torso`'s."""
    if not (outfit.legs_covered or outfit.outfit == "coat"):
        return
    depth = view.depth
    near_thigh = max(depth["left_knee"], depth["right_knee"], depth["left_hip"], depth["right_hip"])
    legs = {
        side: np.stack([view.point(f"{side}_hip"), view.point(f"{side}_knee"), view.point(f"{side}_ankle")])
        for side in ("left", "right")
    }
    if outfit.outfit == "coat":
        length, flare, top = rng.uniform(0.12, 0.32), rng.uniform(0.01, 0.04), corners
    else:
        # short on crouching figures, whose thighs point forward
        longest = 0.2 if kind == "crouching" else 0.36
        length, flare = rng.uniform(0.14, longest), rng.uniform(0.015, 0.07)
        top = corners[1:3] + 0.08 * (view.neck - view.pelvis)
    hem = [circle_points(_point_along(legs[side], length), 0.05 * body.leg_width + flare) for side in legs]
    label = COAT if outfit.outfit == "coat" else SKIRT
    parts.append((near_thigh + 2e-3, Polygon(convex_hull(np.concatenate([top, *hem])), label)))


def add_head(parts, rng, view, body, outfit):
    """Neck, hair (long hair falls toward the pelvis; a bun sits at the back), head, face and hat."""
    head, head_z, head_r, w = view.head, view.head_depth, body.head_r, body.build
    parts.append((view.neck_depth, Capsule(view.neck, head, 0.028 * w, 0.03 * w, SKIN)))
    head_up = _unit(head - view.neck)
    head_side = np.array([-head_up[1], head_up[0]])
    torso_down = _unit(view.pelvis - view.neck)
    sin_yaw = math.sin(view.skeleton.yaw)
    if outfit.hair == "long":
        end = head + torso_down * head_r * rng.uniform(1.6, 3.2)
        r0 = head_r * rng.uniform(0.9, 1.05)
        parts.append((-0.01, Capsule(head, end, r0, head_r * rng.uniform(0.6, 0.9), HAIR)))
    elif outfit.hair == "bun":
        back = np.array([-view.facing * abs(sin_yaw), 0.0])  # the back of the head, seen from the side
        bun = head + head_r * (0.6 * head_up + 0.8 * back)
        parts.append((head_z - 1e-3, Circle(bun, head_r * rng.uniform(0.4, 0.6), HAIR)))
    parts.append((head_z, Circle(head, head_r, HAIR)))
    face_center = head + head_r * np.array([0.22 * sin_yaw, 0.12])
    parts.append((head_z + 1e-3, Circle(face_center, 0.86 * head_r, SKIN)))
    if outfit.hat:
        brim = head + 0.55 * head_r * head_up
        half = head_r * rng.uniform(1.15, 1.6)
        brim_capsule = Capsule(brim - half * head_side, brim + half * head_side, 0.14 * head_r, 0.14 * head_r, HAT)
        parts.append((head_z + 2e-3, brim_capsule))
        parts.append((head_z + 2e-3, Circle(head + 0.8 * head_r * head_up, 0.72 * head_r, HAT)))


def add_bag(parts, rng, view, body, outfit):
    """A shoulder bag (a strap from the other shoulder to a bag by the hip) or a backpack
    (behind the torso)."""
    torso_down = _unit(view.pelvis - view.neck)
    if outfit.bag == "shoulder":
        side = "left" if rng.random() < 0.5 else "right"
        other = "right" if side == "left" else "left"
        hip, out = view.point(f"{side}_hip"), _unit(view.point(f"{side}_hip") - view.point(f"{other}_hip"))
        center = hip + out * (0.05 * body.build + rng.uniform(0.02, 0.05)) + torso_down * rng.uniform(-0.03, 0.06)
        half_w, half_h = rng.uniform(0.02, 0.045), rng.uniform(0.03, 0.045)
        d = view.depth[f"{side}_hip"] + 0.02
        parts.append((d, Capsule(view.point(f"{other}_shoulder"), center, 0.008, 0.008, BAG)))
        parts.append((d, Capsule(center - half_w * out, center + half_w * out, half_h, half_h, BAG)))
    elif outfit.bag == "backpack":
        neck, pelvis = view.skeleton.neck, view.skeleton.pelvis
        behind = np.array([0.0, 0.0, 0.09 + 0.04 * body.build])
        top, top_z = view.skeleton.project(neck + 0.35 * (pelvis - neck) - behind)
        bottom, _ = view.skeleton.project(neck + 0.8 * (pelvis - neck) - behind)
        radius = rng.uniform(0.07, 0.1)
        parts.append((top_z, Capsule(top, bottom, radius, radius, BAG)))
