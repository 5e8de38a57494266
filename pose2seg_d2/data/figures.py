"""
Articulated human figures for the synthetic occluded-human benchmark.

A figure is built from a kinematic skeleton: the pelvis is the root, the torso, neck and
head hang from it, arms from the shoulders and legs from the hips. Joint angles are sampled
per pose kind (:data:`POSE_KINDS`) in a 3D body frame (x: the person's left, y: down, z:
forward), the body is turned about the vertical axis (yaw: facing the camera, left or right)
and projected orthographically; an in-plane rotation, a scale (the standing height in
pixels) and a translation place it in the image.

Coordinates are continuous image coordinates: pixel (i, j) covers [i, i + 1) x [j, j + 1)
and has its center at (i + 0.5, j + 0.5). Keypoints are (17, 2) in COCO order. A figure is
drawn as primitives (tapered limbs with round joints, a torso polygon, head, hair, hands,
feet) into a label map of body-part classes (:data:`PART_LABELS`); primitives are sorted far
to near so self-occlusion looks right. The drawing also puts a 3x3 dot of the figure on the
pixel of every keypoint, so each keypoint lies on its figure's silhouette.

So that a skeleton does not determine the silhouette, every figure has its own build (torso,
arm and leg thickness, head size) and an outfit (:data:`OUTFITS`: shirt and trousers, a dress,
a skirt or a knee-long coat, whose hems follow the legs), a hair style (short, long, or a
bun), and sometimes a hat, a shoulder bag or a backpack; all of them belong to the person's
mask.
"""
import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..pose.keypoints import COCO_PERSON_KEYPOINT_NAMES

__all__ = ["POSE_KINDS", "PART_LABELS", "NUM_PART_LABELS", "OUTFITS", "Figure", "sample_figure", "draw_figure"]

POSE_KINDS = ("standing", "walking", "arms_raised", "crouching", "bending", "varied")
POSE_KIND_PROBS = (0.28, 0.24, 0.15, 0.12, 0.11, 0.10)

# body-part classes of the label map (0 is background)
PART_LABELS = {"skin": 1, "shirt": 2, "pants": 3, "shoes": 4, "hair": 5, "skirt": 6, "coat": 7, "bag": 8, "hat": 9}
SKIN, SHIRT, PANTS, SHOES, HAIR, SKIRT, COAT, BAG, HAT = (
    PART_LABELS[k] for k in ("skin", "shirt", "pants", "shoes", "hair", "skirt", "coat", "bag", "hat")
)
NUM_PART_LABELS = 1 + len(PART_LABELS)

# outfits and their probabilities: "dress" colors the torso and the skirt alike
OUTFITS = ("shirt_pants", "dress", "skirt", "coat")
OUTFIT_PROBS = (0.4, 0.2, 0.2, 0.2)
HAIR_STYLES = ("short", "long", "bun")
HAIR_PROBS = (0.5, 0.3, 0.2)
HAT_PROB = 0.15
BAG_PROB = 0.3  # of which a third are backpacks

_KP = {name: i for i, name in enumerate(COCO_PERSON_KEYPOINT_NAMES)}
_SHIFT = 4  # cv2 fixed-point bits
_ONE = 1 << _SHIFT


@dataclass
class Figure:
    """
    A posed figure.

    Attributes:
        keypoints (ndarray): (17, 2) float64, COCO order.
        primitives (list[tuple]): in draw order (far to near), each one of
            ``("capsule", p0, p1, r0, r1, label)``, ``("poly", points (n, 2), label)``,
            ``("circle", center, radius, label)``.
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
        a = math.radians(angle_deg)
        rot = scale * np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
        off = np.asarray(offset, dtype=np.float64)

        def tp(p):
            return np.asarray(p, dtype=np.float64) @ rot.T + off

        prims = []
        for prim in self.primitives:
            if prim[0] == "capsule":
                prims.append(("capsule", tp(prim[1]), tp(prim[2]), prim[3] * scale, prim[4] * scale, prim[5]))
            elif prim[0] == "poly":
                prims.append(("poly", tp(prim[1]), prim[2]))
            else:
                prims.append(("circle", tp(prim[1]), prim[2] * scale, prim[3]))
        return Figure(tp(self.keypoints), prims, self.kind, self.facing, dict(self.attributes))

    def box(self):
        """(x0, y0, x1, y1): the extent of the primitives (continuous coordinates)."""
        lo = np.full(2, np.inf)
        hi = np.full(2, -np.inf)
        for prim in self.primitives:
            if prim[0] == "capsule":
                for p, r in ((prim[1], prim[3]), (prim[2], prim[4])):
                    lo, hi = np.minimum(lo, p - r), np.maximum(hi, p + r)
            elif prim[0] == "poly":
                lo, hi = np.minimum(lo, prim[1].min(0)), np.maximum(hi, prim[1].max(0))
            else:
                lo, hi = np.minimum(lo, prim[1] - prim[2]), np.maximum(hi, prim[1] + prim[2])
        return np.concatenate([lo, hi])


def _rot_x(a):  # rotates down (+y) toward forward (+z) for a > 0
    c, s = math.cos(a), math.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _rot_z(a):  # rotates down (+y) toward the person's left (+x) for a > 0
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, s, 0], [-s, c, 0], [0, 0, 1]])


_DOWN = np.array([0.0, 1.0, 0.0])


def _limb_dir(abduction_deg, flexion_deg, side):
    """Unit direction of a limb hanging down, abducted sideways (``side`` +1 left, -1 right)
    then swung forward by ``flexion_deg``."""
    return _rot_x(math.radians(flexion_deg)) @ _rot_z(math.radians(side * abduction_deg)) @ _DOWN


def _sample_angles(rng, kind):
    """Joint angles in degrees: per side (left, right) arm abduction, arm flexion, elbow
    flexion, hip abduction, hip flexion, knee flexion; torso lean and head tilt."""
    u = rng.uniform
    arm_abd, arm_flex, elbow, hip_abd, hip_flex, knee = ([0.0, 0.0] for _ in range(6))
    lean, tilt = u(-4, 4), u(-10, 10)
    if kind == "standing":
        arm_abd = [u(4, 28), u(4, 28)]
        arm_flex = [u(-12, 15), u(-12, 15)]
        elbow = [u(0, 35), u(0, 35)]
        hip_abd = [u(1, 9), u(1, 9)]
        hip_flex = [u(-5, 8), u(-5, 8)]
        knee = [u(0, 10), u(0, 10)]
    elif kind == "walking":
        swing = u(15, 35)
        lead = 1 if rng.random() < 0.5 else -1
        hip_flex = [lead * swing, -lead * swing * u(0.6, 1.0)]
        knee = [u(0, 12), u(10, 45)] if lead > 0 else [u(10, 45), u(0, 12)]
        arm_flex = [-lead * u(10, 35), lead * u(10, 35)]
        arm_abd = [u(3, 14), u(3, 14)]
        elbow = [u(5, 45), u(5, 45)]
        hip_abd = [u(0, 6), u(0, 6)]
        lean = u(0, 8)
    elif kind == "arms_raised":
        both = rng.random() < 0.65
        arm_abd = [u(100, 178), u(100, 178) if both else u(5, 30)]
        if rng.random() < 0.5:
            arm_abd.reverse()
        arm_flex = [u(-15, 25), u(-15, 25)]
        elbow = [u(0, 70), u(0, 70)]
        hip_abd = [u(2, 14), u(2, 14)]
        hip_flex = [u(-5, 10), u(-5, 10)]
        knee = [u(0, 15), u(0, 15)]
    elif kind == "crouching":
        hip_flex = [u(60, 105), u(60, 105)]
        knee = [u(80, 140), u(80, 140)]
        hip_abd = [u(5, 25), u(5, 25)]
        arm_abd = [u(5, 35), u(5, 35)]
        arm_flex = [u(15, 75), u(15, 75)]
        elbow = [u(10, 90), u(10, 90)]
        lean = u(10, 35)
    elif kind == "bending":
        lean = u(40, 85)
        hip_flex = [u(-5, 10), u(-5, 10)]
        knee = [u(0, 20), u(0, 20)]
        hip_abd = [u(2, 10), u(2, 10)]
        arm_abd = [u(0, 20), u(0, 20)]
        arm_flex = [u(-10, 40), u(-10, 40)]
        elbow = [u(0, 40), u(0, 40)]
    elif kind == "varied":
        arm_abd = [u(0, 170), u(0, 170)]
        arm_flex = [u(-40, 110), u(-40, 110)]
        elbow = [u(0, 120), u(0, 120)]
        hip_abd = [u(0, 35), u(0, 35)]
        hip_flex = [u(-25, 80), u(-25, 80)]
        knee = [u(0, 110), u(0, 110)]
        lean = u(-10, 45)
        tilt = u(-25, 25)
    else:
        raise ValueError(f"unknown pose kind {kind!r}, expected one of {POSE_KINDS}")
    return arm_abd, arm_flex, elbow, hip_abd, hip_flex, knee, lean, tilt


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


def _hull(points):
    """(n, 2) convex hull of 2D points, for one convex polygon primitive."""
    pts = np.asarray(points, dtype=np.float64)
    # cv2.convexHull wants float32; 1e-3 precision is plenty for body units of about 1
    hull = cv2.convexHull((pts * 1000).astype(np.float32))[:, 0] / 1000
    return hull.astype(np.float64)


def _disc(center, radius, n=10):
    a = np.linspace(0, 2 * math.pi, n, endpoint=False)
    return np.asarray(center) + radius * np.stack([np.cos(a), np.sin(a)], 1)


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
    arm_abd, arm_flex, elbow, hip_abd, hip_flex, knee, lean, tilt = _sample_angles(rng, kind)

    # body proportions (units of standing height), with per-person variation
    j = lambda: rng.uniform(0.93, 1.07)  # noqa: E731
    build = rng.uniform(0.75, 1.4)  # girth: torso, arms and legs
    arm_width = build * rng.uniform(0.8, 1.3)
    leg_width = build * rng.uniform(0.8, 1.35)
    torso_len, neck_len, head_r = 0.30 * j(), 0.045 * j(), 0.068 * j() * rng.uniform(0.9, 1.12)
    upper_arm, forearm, thigh, shin = 0.165 * j(), 0.15 * j(), 0.235 * j(), 0.225 * j()
    sh_half, hip_half = 0.105 * j() * build**0.5, 0.068 * j() * build**0.5
    outfit = str(rng.choice(OUTFITS, p=OUTFIT_PROBS))
    hair = str(rng.choice(HAIR_STYLES, p=HAIR_PROBS))
    hat = bool(rng.random() < HAT_PROB)
    bag = "none"
    if rng.random() < BAG_PROB:
        bag = "backpack" if rng.random() < 1 / 3 else "shoulder"

    # yaw: 0 faces the camera, > 0 turns to face image right
    if kind in ("walking", "bending"):
        yaw = rng.uniform(0.55, 1.35) * (1 if rng.random() < 0.5 else -1)
    else:
        yaw = rng.uniform(-1.3, 1.3)
    facing = 1 if yaw > 0 else -1
    cy, sy = math.cos(yaw), math.sin(yaw)
    yaw_m = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])

    pelvis = np.zeros(3)
    up = _rot_x(math.radians(lean)) @ -_DOWN  # leaning forward moves the neck to +z
    neck = pelvis + torso_len * up
    side_axis = np.array([1.0, 0.0, 0.0])
    pts = {}
    pts["left_shoulder"], pts["right_shoulder"] = neck + sh_half * side_axis, neck - sh_half * side_axis
    pts["left_hip"], pts["right_hip"] = pelvis + hip_half * side_axis, pelvis - hip_half * side_axis
    for s, side in ((0, "left"), (1, "right")):
        sign = 1 if side == "left" else -1
        d_up = _limb_dir(arm_abd[s], arm_flex[s], sign)
        d_fore = _limb_dir(arm_abd[s], arm_flex[s] + elbow[s], sign)
        pts[f"{side}_elbow"] = pts[f"{side}_shoulder"] + upper_arm * d_up
        pts[f"{side}_wrist"] = pts[f"{side}_elbow"] + forearm * d_fore
        d_thigh = _limb_dir(hip_abd[s], hip_flex[s], sign)
        d_shin = _limb_dir(hip_abd[s] * 0.5, hip_flex[s] - knee[s], sign)
        pts[f"{side}_knee"] = pts[f"{side}_hip"] + thigh * d_thigh
        pts[f"{side}_ankle"] = pts[f"{side}_knee"] + shin * d_shin
    head_dir = _rot_x(math.radians(0.7 * lean)) @ _rot_z(math.radians(tilt)) @ -_DOWN
    head = neck + (neck_len + head_r) * head_dir
    # face points in the head frame (facing the camera), then the head's tilt
    face = {
        "nose": (0.0, 0.18, 0.92),
        "left_eye": (0.36, -0.12, 0.78),
        "right_eye": (-0.36, -0.12, 0.78),
        "left_ear": (0.8, 0.0, -0.05),
        "right_ear": (-0.8, 0.0, -0.05),
    }
    head_rot = _rot_x(math.radians(0.7 * lean)) @ _rot_z(math.radians(tilt))
    for name, p in face.items():
        pts[name] = head + head_r * (head_rot @ np.array(p))

    def project(p):
        q = yaw_m @ p
        return np.array([q[0], q[1]]), q[2]

    kp = np.zeros((17, 2))
    depth = {}
    for name, p in pts.items():
        kp[_KP[name]], depth[name] = project(p)
    head2, head_z = project(head)
    neck2, neck_z = project(neck)
    pelvis2, _ = project(pelvis)

    w = build
    prims = []  # (depth, primitive)

    def limb(a, b, r0, r1, label):
        prims.append(((depth[a] + depth[b]) / 2, ("capsule", kp[_KP[a]], kp[_KP[b]], r0, r1, label)))

    legs_covered = outfit in ("dress", "skirt")
    leg_label = SKIN if legs_covered and rng.random() < 0.5 else PANTS  # bare legs or tights
    sleeve_label = COAT if outfit == "coat" else SHIRT
    sleeve_width = 1.2 if outfit == "coat" else 1.0
    sleeves = outfit == "coat" or rng.random() < 0.5  # long sleeves
    for side in ("left", "right"):
        aw = arm_width * sleeve_width
        limb(f"{side}_shoulder", f"{side}_elbow", 0.033 * aw, 0.027 * aw, sleeve_label)
        limb(f"{side}_elbow", f"{side}_wrist", 0.027 * aw, 0.021 * aw, sleeve_label if sleeves else SKIN)
        wrist = kp[_KP[f"{side}_wrist"]]
        prims.append((depth[f"{side}_wrist"] + 1e-3, ("circle", wrist, 0.026 * arm_width, SKIN)))
        lw = leg_width * (0.75 if leg_label == SKIN else 1.0)
        limb(f"{side}_hip", f"{side}_knee", 0.055 * lw, 0.042 * lw, leg_label)
        limb(f"{side}_knee", f"{side}_ankle", 0.042 * lw, 0.03 * lw, leg_label)
        ankle = kp[_KP[f"{side}_ankle"]]
        toe = ankle + np.array([facing * 0.05, 0.012])
        prims.append((depth[f"{side}_ankle"] + 1e-3, ("capsule", ankle, toe, 0.026, 0.02, SHOES)))
    # torso: a polygon through the widened shoulders and hips, over a capsule for its depth
    torso_label = SKIRT if outfit == "dress" else COAT if outfit == "coat" else SHIRT
    corners3 = [
        pts["left_shoulder"] + 0.025 * w * side_axis,
        pts["left_hip"] + 0.04 * w * side_axis,
        pts["right_hip"] - 0.04 * w * side_axis,
        pts["right_shoulder"] - 0.025 * w * side_axis,
    ]
    corners = np.array([project(c)[0] for c in corners3])
    waist = 0.5 * (corners[1] + corners[2])
    shirt_bottom = pelvis2 + 0.25 * (neck2 - pelvis2)
    prims.append((0.0, ("capsule", shirt_bottom, neck2, 0.065 * w, 0.06 * w, torso_label)))
    prims.append((0.0, ("capsule", pelvis2, shirt_bottom, 0.06 * w, 0.065 * w, PANTS if not legs_covered else SKIRT)))
    prims.append((0.001, ("poly", corners, torso_label)))
    if not legs_covered:
        hips_poly = np.array([corners[1], corners[2], 0.5 * (corners[2] + corners[3]), 0.5 * (corners[0] + corners[1])])
        hips_poly[2:] = waist + 0.35 * (hips_poly[2:] - waist) + 0.2 * (neck2 - pelvis2)
        prims.append((0.002, ("poly", hips_poly, PANTS)))

    # hems: along each leg from the hip, so that skirts and coats follow the legs' pose
    near_thigh = max(depth["left_knee"], depth["right_knee"], depth["left_hip"], depth["right_hip"])
    legs = {
        side: np.stack([kp[_KP[f"{side}_hip"]], kp[_KP[f"{side}_knee"]], kp[_KP[f"{side}_ankle"]]])
        for side in ("left", "right")
    }
    if legs_covered or outfit == "coat":
        if outfit == "coat":
            length, flare, top = rng.uniform(0.12, 0.32), rng.uniform(0.01, 0.04), corners
        else:
            # short on crouching figures, whose thighs point forward
            longest = 0.2 if kind == "crouching" else 0.36
            length, flare = rng.uniform(0.14, longest), rng.uniform(0.015, 0.07)
            top = corners[1:3] + 0.08 * (neck2 - pelvis2)
        hem = [_disc(_point_along(legs[side], length), 0.05 * leg_width + flare) for side in legs]
        label = COAT if outfit == "coat" else SKIRT
        prims.append((near_thigh + 2e-3, ("poly", _hull(np.concatenate([top, *hem])), label)))

    prims.append((neck_z, ("capsule", neck2, head2, 0.028 * w, 0.03 * w, SKIN)))
    head_up = _unit(head2 - neck2)
    head_side = np.array([-head_up[1], head_up[0]])
    torso_down = _unit(pelvis2 - neck2)
    if hair == "long":
        end = head2 + torso_down * head_r * rng.uniform(1.6, 3.2)
        prims.append((-0.01, ("capsule", head2, end, head_r * rng.uniform(0.9, 1.05), head_r * rng.uniform(0.6, 0.9), HAIR)))
    elif hair == "bun":
        back = np.array([-facing * abs(sy), 0.0])  # the back of the head, seen from the side
        bun = head2 + head_r * (0.6 * head_up + 0.8 * back)
        prims.append((head_z - 1e-3, ("circle", bun, head_r * rng.uniform(0.4, 0.6), HAIR)))
    prims.append((head_z, ("circle", head2, head_r, HAIR)))
    face_center = head2 + head_r * np.array([0.22 * sy, 0.12])
    prims.append((head_z + 1e-3, ("circle", face_center, 0.86 * head_r, SKIN)))
    if hat:
        brim = head2 + 0.55 * head_r * head_up
        half = head_r * rng.uniform(1.15, 1.6)
        prims.append((head_z + 2e-3, ("capsule", brim - half * head_side, brim + half * head_side, 0.14 * head_r, 0.14 * head_r, HAT)))
        prims.append((head_z + 2e-3, ("circle", head2 + 0.8 * head_r * head_up, 0.72 * head_r, HAT)))

    if bag == "shoulder":
        side = "left" if rng.random() < 0.5 else "right"
        other = "right" if side == "left" else "left"
        hip, out = kp[_KP[f"{side}_hip"]], _unit(kp[_KP[f"{side}_hip"]] - kp[_KP[f"{other}_hip"]])
        center = hip + out * (0.05 * build + rng.uniform(0.02, 0.05)) + torso_down * rng.uniform(-0.03, 0.06)
        half_w, half_h = rng.uniform(0.02, 0.045), rng.uniform(0.03, 0.045)
        d = depth[f"{side}_hip"] + 0.02
        prims.append((d, ("capsule", kp[_KP[f"{other}_shoulder"]], center, 0.008, 0.008, BAG)))
        prims.append((d, ("capsule", center - half_w * out, center + half_w * out, half_h, half_h, BAG)))
    elif bag == "backpack":
        top3 = neck + 0.35 * (pelvis - neck) - np.array([0.0, 0.0, 0.09 + 0.04 * build])
        bottom3 = neck + 0.8 * (pelvis - neck) - np.array([0.0, 0.0, 0.09 + 0.04 * build])
        (top2, top_z), (bottom2, _) = project(top3), project(bottom3)
        radius = rng.uniform(0.07, 0.1)
        prims.append((top_z, ("capsule", top2, bottom2, radius, radius, BAG)))

    prims.sort(key=lambda item: item[0])
    attributes = {
        "outfit": outfit,
        "hair": hair,
        "hat": hat,
        "bag": bag,
        "build": round(float(build), 3),
        "arm_width": round(float(arm_width), 3),
        "leg_width": round(float(leg_width), 3),
    }
    return Figure(kp, [p for _, p in prims], kind, facing, attributes)


def _fixed(p):
    """Continuous coordinates -> cv2 fixed point (cv2 puts pixel centers at integers)."""
    return np.round((np.asarray(p, dtype=np.float64) - 0.5) * _ONE).astype(np.int32)


def draw_figure(label_map, figure, dot_keypoints=True):
    """
    Draw ``figure`` into ``label_map`` (in place), primitives in order.

    Args:
        label_map (ndarray): (H, W) uint8, body-part classes.
        figure (Figure): in image coordinates.
        dot_keypoints (bool): also draw a 3x3 dot (label of the nearest primitive class,
            skin) on the pixel of every keypoint inside the image, so it lies on the figure.

    Returns:
        ndarray: ``label_map``.
    """
    for prim in figure.primitives:
        if prim[0] == "capsule":
            _, p0, p1, r0, r1, label = prim
            d = np.asarray(p1, dtype=np.float64) - p0
            n = np.array([-d[1], d[0]])
            norm = np.hypot(*n)
            if norm > 1e-9:
                n /= norm
                quad = np.stack([p0 + r0 * n, p1 + r1 * n, p1 - r1 * n, p0 - r0 * n])
                cv2.fillConvexPoly(label_map, _fixed(quad), int(label), cv2.LINE_8, _SHIFT)
            for p, r in ((p0, r0), (p1, r1)):
                cv2.circle(label_map, tuple(_fixed(p)), max(int(round(r * _ONE)), _ONE // 2), int(label), -1, cv2.LINE_8, _SHIFT)
        elif prim[0] == "poly":
            cv2.fillPoly(label_map, [_fixed(prim[1])], int(prim[2]), cv2.LINE_8, _SHIFT)
        else:
            _, c, r, label = prim
            cv2.circle(label_map, tuple(_fixed(c)), max(int(round(r * _ONE)), _ONE // 2), int(label), -1, cv2.LINE_8, _SHIFT)
    if dot_keypoints:
        h, w = label_map.shape
        for x, y in np.floor(figure.keypoints).astype(np.int64):
            if 0 <= x < w and 0 <= y < h:
                y0, y1, x0, x1 = max(y - 1, 0), min(y + 2, h), max(x - 1, 0), min(x + 2, w)
                patch = label_map[y0:y1, x0:x1]
                if label_map[y, x] == 0:
                    patch[patch == 0] = SKIN
    return label_map
