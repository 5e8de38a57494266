"""
The kinematic skeleton of a synthetic figure: pose kinds, joint angles, body proportions and
the orthographic projection of the 17 COCO keypoints.

The pelvis is the root, the torso, neck and head hang from it, arms from the shoulders and
legs from the hips. Joint angles are sampled per pose kind (:data:`POSE_KINDS`) in a 3D body
frame (x: the person's left, y: down, z: forward); the body is turned about the vertical axis
(yaw: facing the camera, left or right) and projected orthographically. Lengths are in units
of the standing height.
"""
import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ...pose.keypoints import COCO_PERSON_KEYPOINT_NAMES

__all__ = [
    "POSE_KINDS",
    "POSE_KIND_PROBS",
    "KEYPOINT_INDEX",
    "SIDE_AXIS",
    "JointAngles",
    "BodyProportions",
    "Skeleton",
    "sample_joint_angles",
    "sample_proportions",
    "sample_yaw",
    "pose_skeleton",
]

POSE_KINDS = ("standing", "walking", "arms_raised", "crouching", "bending", "varied")
POSE_KIND_PROBS = (0.28, 0.24, 0.15, 0.12, 0.11, 0.10)

KEYPOINT_INDEX = {name: i for i, name in enumerate(COCO_PERSON_KEYPOINT_NAMES)}
_DOWN = np.array([0.0, 1.0, 0.0])
SIDE_AXIS = np.array([1.0, 0.0, 0.0])  # the person's left


def rot_x(a):
    """(3, 3) rotation that turns down (+y) toward forward (+z) for ``a`` > 0 (radians)."""
    c, s = math.cos(a), math.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def rot_z(a):
    """(3, 3) rotation that turns down (+y) toward the person's left (+x) for ``a`` > 0 (radians)."""
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, s, 0], [-s, c, 0], [0, 0, 1]])


def _limb_dir(abduction_deg, flexion_deg, side):
    """Unit direction of a limb hanging down, abducted sideways (``side`` +1 left, -1 right)
    then swung forward by ``flexion_deg``."""
    return rot_x(math.radians(flexion_deg)) @ rot_z(math.radians(side * abduction_deg)) @ _DOWN


class JointAngles(NamedTuple):
    """Joint angles in degrees: per side [left, right] arm abduction, arm flexion, elbow
    flexion, hip abduction, hip flexion, knee flexion; the torso's forward lean and the head's
    sideways tilt."""

    arm_abd: list
    arm_flex: list
    elbow: list
    hip_abd: list
    hip_flex: list
    knee: list
    lean: float
    tilt: float


def sample_joint_angles(rng, kind):
    """:class:`JointAngles` of a pose of ``kind`` (one of :data:`POSE_KINDS`)."""
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
    return JointAngles(arm_abd, arm_flex, elbow, hip_abd, hip_flex, knee, lean, tilt)


@dataclass(frozen=True)
class BodyProportions:
    """
    One person's build, in units of the standing height except the width factors.

    ``build`` scales the girth of torso, arms and legs; ``arm_width`` and ``leg_width`` are
    ``build`` times a per-limb factor; the rest are segment lengths, the head's radius and the
    half widths of shoulders and hips.
    """

    build: float
    arm_width: float
    leg_width: float
    torso_len: float
    neck_len: float
    head_r: float
    upper_arm: float
    forearm: float
    thigh: float
    shin: float
    sh_half: float
    hip_half: float


def sample_proportions(rng):
    """:class:`BodyProportions` with per-person variation (each length within 7 %)."""
    j = lambda: rng.uniform(0.93, 1.07)  # noqa: E731
    build = rng.uniform(0.75, 1.4)
    arm_width = build * rng.uniform(0.8, 1.3)
    leg_width = build * rng.uniform(0.8, 1.35)
    torso_len, neck_len, head_r = 0.30 * j(), 0.045 * j(), 0.068 * j() * rng.uniform(0.9, 1.12)
    upper_arm, forearm, thigh, shin = 0.165 * j(), 0.15 * j(), 0.235 * j(), 0.225 * j()
    sh_half, hip_half = 0.105 * j() * build**0.5, 0.068 * j() * build**0.5
    return BodyProportions(
        build, arm_width, leg_width, torso_len, neck_len, head_r, upper_arm, forearm, thigh, shin, sh_half, hip_half
    )


def sample_yaw(rng, kind):
    """The body's turn about the vertical axis in radians: 0 faces the camera, > 0 turns to
    face image right; walking and bending figures are seen from the side."""
    if kind in ("walking", "bending"):
        return rng.uniform(0.55, 1.35) * (1 if rng.random() < 0.5 else -1)
    return rng.uniform(-1.3, 1.3)


@dataclass
class Skeleton:
    """
    A posed skeleton in the 3D body frame.

    Attributes:
        joints (dict[str, ndarray]): the 17 COCO keypoints by name, (3,) each.
        pelvis, neck, head (ndarray): (3,) the root, the torso's top and the head's center.
        head_rotation (ndarray): (3, 3) the head's lean and tilt.
        yaw (float): the turn about the vertical axis (:func:`sample_yaw`).
    """

    joints: dict
    pelvis: np.ndarray
    neck: np.ndarray
    head: np.ndarray
    head_rotation: np.ndarray
    yaw: float

    def __post_init__(self):
        cy, sy = math.cos(self.yaw), math.sin(self.yaw)
        self._yaw_matrix = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])

    def project(self, p):
        """(3,) body-frame point -> ((2,) image-plane point, depth: larger is nearer)."""
        q = self._yaw_matrix @ p
        return np.array([q[0], q[1]]), q[2]

    def keypoints(self):
        """(17, 2) projected keypoints in COCO order and each keypoint's depth by name."""
        kp = np.zeros((17, 2))
        depth = {}
        for name, p in self.joints.items():
            kp[KEYPOINT_INDEX[name]], depth[name] = self.project(p)
        return kp, depth


# face points in the head frame (facing the camera), in units of the head's radius
_FACE = {
    "nose": (0.0, 0.18, 0.92),
    "left_eye": (0.36, -0.12, 0.78),
    "right_eye": (-0.36, -0.12, 0.78),
    "left_ear": (0.8, 0.0, -0.05),
    "right_ear": (-0.8, 0.0, -0.05),
}


def _limb_joints(angles, body, joints):
    """Elbows, wrists, knees and ankles from the shoulders and hips already in ``joints``."""
    for s, side in ((0, "left"), (1, "right")):
        sign = 1 if side == "left" else -1
        d_up = _limb_dir(angles.arm_abd[s], angles.arm_flex[s], sign)
        d_fore = _limb_dir(angles.arm_abd[s], angles.arm_flex[s] + angles.elbow[s], sign)
        joints[f"{side}_elbow"] = joints[f"{side}_shoulder"] + body.upper_arm * d_up
        joints[f"{side}_wrist"] = joints[f"{side}_elbow"] + body.forearm * d_fore
        d_thigh = _limb_dir(angles.hip_abd[s], angles.hip_flex[s], sign)
        d_shin = _limb_dir(angles.hip_abd[s] * 0.5, angles.hip_flex[s] - angles.knee[s], sign)
        joints[f"{side}_knee"] = joints[f"{side}_hip"] + body.thigh * d_thigh
        joints[f"{side}_ankle"] = joints[f"{side}_knee"] + body.shin * d_shin


def pose_skeleton(angles, body, yaw):
    """The :class:`Skeleton` of :class:`JointAngles` ``angles`` and :class:`BodyProportions`
    ``body``, turned by ``yaw``; pelvis at the origin."""
    pelvis = np.zeros(3)
    up = rot_x(math.radians(angles.lean)) @ -_DOWN  # leaning forward moves the neck to +z
    neck = pelvis + body.torso_len * up
    joints = {}
    joints["left_shoulder"], joints["right_shoulder"] = neck + body.sh_half * SIDE_AXIS, neck - body.sh_half * SIDE_AXIS
    joints["left_hip"], joints["right_hip"] = pelvis + body.hip_half * SIDE_AXIS, pelvis - body.hip_half * SIDE_AXIS
    _limb_joints(angles, body, joints)
    head_dir = rot_x(math.radians(0.7 * angles.lean)) @ rot_z(math.radians(angles.tilt)) @ -_DOWN
    head = neck + (body.neck_len + body.head_r) * head_dir
    head_rotation = rot_x(math.radians(0.7 * angles.lean)) @ rot_z(math.radians(angles.tilt))
    for name, p in _FACE.items():
        joints[name] = head + body.head_r * (head_rotation @ np.array(p))
    return Skeleton(joints, pelvis, neck, head, head_rotation, yaw)
