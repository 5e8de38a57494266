"""
Drawing primitives of the synthetic figures and the body-part classes they are drawn with.

Coordinates are continuous image coordinates: pixel (i, j) covers [i, i + 1) x [j, j + 1)
and has its center at (i + 0.5, j + 0.5). A primitive draws itself into an (H, W) uint8 label
map of body-part classes (:data:`PART_LABELS`, 0 is background) through OpenCV's fixed-point
rasterizer, whose pixel centers are at integers.
"""
import math
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = [
    "PART_LABELS",
    "NUM_PART_LABELS",
    "SimilarityTransform",
    "Circle",
    "Capsule",
    "Polygon",
    "circle_points",
    "convex_hull",
]

# body-part classes of the label map (0 is background)
PART_LABELS = {"skin": 1, "shirt": 2, "pants": 3, "shoes": 4, "hair": 5, "skirt": 6, "coat": 7, "bag": 8, "hat": 9}
SKIN, SHIRT, PANTS, SHOES, HAIR, SKIRT, COAT, BAG, HAT = (
    PART_LABELS[k] for k in ("skin", "shirt", "pants", "shoes", "hair", "skirt", "coat", "bag", "hat")
)
NUM_PART_LABELS = 1 + len(PART_LABELS)

_SHIFT = 4  # cv2 fixed-point bits
_ONE = 1 << _SHIFT


@dataclass(frozen=True)
class SimilarityTransform:
    """
    ``x -> x @ linear.T + offset`` on (..., 2) points, where ``linear`` is ``scale`` times a
    rotation; lengths scale by ``scale``.
    """

    linear: np.ndarray  # (2, 2) float64
    offset: np.ndarray  # (2,) float64
    scale: float

    @classmethod
    def make(cls, scale, angle_deg, offset):
        """Scale by ``scale``, rotate by ``angle_deg`` (counterclockwise on screen, whose y
        points down) about the origin, then translate by ``offset`` (x, y)."""
        a = math.radians(angle_deg)
        linear = scale * np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
        return cls(linear, np.asarray(offset, dtype=np.float64), scale)

    def points(self, p):
        """(..., 2) points -> (..., 2) float64 transformed points."""
        return np.asarray(p, dtype=np.float64) @ self.linear.T + self.offset


def _fixed(p):
    """Continuous coordinates -> cv2 fixed point (cv2 puts pixel centers at integers)."""
    return np.round((np.asarray(p, dtype=np.float64) - 0.5) * _ONE).astype(np.int32)


def _fill_disc(label_map, center, radius, label):
    """A filled disc, at least half a pixel in radius so that a tiny one still shows."""
    fixed_radius = max(int(round(radius * _ONE)), _ONE // 2)
    cv2.circle(label_map, tuple(_fixed(center)), fixed_radius, int(label), -1, cv2.LINE_8, _SHIFT)


@dataclass(frozen=True)
class Circle:
    """A filled disc: ``center`` (2,) and ``radius`` in pixels or figure units."""

    center: np.ndarray
    radius: float
    label: int

    def transformed(self, transform):
        return Circle(transform.points(self.center), self.radius * transform.scale, self.label)

    def extent(self):
        """(lo (2,), hi (2,)): the corners of the bounding box."""
        return self.center - self.radius, self.center + self.radius

    def draw(self, label_map):
        _fill_disc(label_map, self.center, self.radius, self.label)


@dataclass(frozen=True)
class Capsule:
    """A tapered limb: the convex hull of the discs (``p0``, ``r0``) and (``p1``, ``r1``)."""

    p0: np.ndarray
    p1: np.ndarray
    r0: float
    r1: float
    label: int

    def transformed(self, transform):
        return Capsule(
            transform.points(self.p0), transform.points(self.p1), self.r0 * transform.scale,
            self.r1 * transform.scale, self.label,
        )  # fmt: skip

    def extent(self):
        """(lo (2,), hi (2,)): the corners of the bounding box of both end discs."""
        lo = np.minimum(self.p0 - self.r0, self.p1 - self.r1)
        hi = np.maximum(self.p0 + self.r0, self.p1 + self.r1)
        return lo, hi

    def draw(self, label_map):
        d = np.asarray(self.p1, dtype=np.float64) - self.p0
        n = np.array([-d[1], d[0]])
        norm = np.hypot(*n)
        if norm > 1e-9:  # the quad between the end discs; a point-like capsule is its discs
            n /= norm
            quad = np.stack([self.p0 + self.r0 * n, self.p1 + self.r1 * n, self.p1 - self.r1 * n, self.p0 - self.r0 * n])
            cv2.fillConvexPoly(label_map, _fixed(quad), int(self.label), cv2.LINE_8, _SHIFT)
        _fill_disc(label_map, self.p0, self.r0, self.label)
        _fill_disc(label_map, self.p1, self.r1, self.label)


@dataclass(frozen=True)
class Polygon:
    """A filled polygon: ``points`` (n, 2)."""

    points: np.ndarray
    label: int

    def transformed(self, transform):
        return Polygon(transform.points(self.points), self.label)

    def extent(self):
        """(lo (2,), hi (2,)): the corners of the bounding box."""
        return self.points.min(0), self.points.max(0)

    def draw(self, label_map):
        cv2.fillPoly(label_map, [_fixed(self.points)], int(self.label), cv2.LINE_8, _SHIFT)


def convex_hull(points):
    """(n, 2) convex hull of 2D points, for one convex polygon primitive."""
    pts = np.asarray(points, dtype=np.float64)
    # cv2.convexHull wants float32; 1e-3 precision is plenty for body units of about 1
    hull = cv2.convexHull((pts * 1000).astype(np.float32))[:, 0] / 1000
    return hull.astype(np.float64)


def circle_points(center, radius, n=10):
    """(n, 2) points evenly spaced on the circle of ``radius`` about ``center`` (2,)."""
    a = np.linspace(0, 2 * math.pi, n, endpoint=False)
    return np.asarray(center) + radius * np.stack([np.cos(a), np.sin(a)], 1)
