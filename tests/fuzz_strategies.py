"""
Hypothesis strategies for messy keypoints, as pose estimators and hand-made files give them:
NaN and infinite coordinates, nothing or only one or two keypoints labeled, identical and
collinear points, persons far outside the image, tiny and huge persons, and no person at all.
"""
import numpy as np
from hypothesis import strategies as st

from pose2seg_d2.pose import MAX_COORDINATE, NUM_KEYPOINTS

from .fixtures import STANDING

# Person heights in pixels, from a point to astronomically large.
SIZES = (0.0, 1e-9, 1e-3, 0.3, 2.0, 15.0, 60.0, 400.0, 1e5, 1e15, 1e30)
# Where a person's center lies, as a fraction of the image side (far outside included) or as
# an absolute offset in pixels.
FRACTIONS = (-1e6, -3.0, -0.2, 0.0, 0.5, 0.97, 1.0, 1.4, 40.0)
OFFSETS = (0.0, 1e4, -1e9, 1e20, -3e38)
# Values that replace single coordinates or visibilities.
POISON = (np.nan, np.inf, -np.inf, 3e38, -3e38, 1e300)
SHAPES = ("standing", "random", "identical", "collinear", "two_clusters")
LABELED_COUNTS = (0, 1, 2, 3, 4, 9, 16, 17)


@st.composite
def person_keypoints(draw, image_size=(100.0, 100.0)):
    """
    One person (17, 3) float64 of (x, y, v) in pixel coordinates of an image of
    ``image_size`` (height, width).
    """
    h, w = image_size
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = draw(st.sampled_from(SHAPES))
    size = draw(st.sampled_from(SIZES))
    if shape == "standing":
        unit = STANDING - 0.5
        if draw(st.booleans()):
            unit = unit + rng.normal(0, 0.03, unit.shape)
    elif shape == "random":
        unit = rng.uniform(-0.5, 0.5, (NUM_KEYPOINTS, 2))
    elif shape == "identical":
        unit = np.zeros((NUM_KEYPOINTS, 2))
    elif shape == "collinear":
        direction = rng.normal(size=2)
        unit = rng.uniform(-0.5, 0.5, (NUM_KEYPOINTS, 1)) * direction / np.linalg.norm(direction)
    else:
        unit = np.where(rng.random((NUM_KEYPOINTS, 1)) < 0.5, -0.5, 0.5) * np.ones((1, 2))
    if draw(st.booleans()):
        angle = rng.uniform(-np.pi, np.pi)
        c, s = np.cos(angle), np.sin(angle)
        unit = unit @ np.array([[c, s], [-s, c]])
    fx, fy = draw(st.sampled_from(FRACTIONS)), draw(st.sampled_from(FRACTIONS))
    center = np.array([fx * w, fy * h]) + draw(st.sampled_from(OFFSETS))
    with np.errstate(over="ignore", invalid="ignore"):
        xy = center + unit * size

    num_labeled = draw(st.sampled_from(LABELED_COUNTS))
    labeled = np.zeros(NUM_KEYPOINTS, bool)
    labeled[rng.permutation(NUM_KEYPOINTS)[:num_labeled]] = True
    v = np.where(labeled, rng.choice([1.0, 2.0], NUM_KEYPOINTS), 0.0)
    keypoints = np.concatenate([xy, v[:, None]], axis=1)
    if draw(st.booleans()):  # COCO writes unlabeled keypoints as (0, 0, 0)
        keypoints[~labeled] = 0.0
    for _ in range(draw(st.integers(0, 3))):
        k, column = draw(st.integers(0, NUM_KEYPOINTS - 1)), draw(st.integers(0, 2))
        keypoints[k, column] = draw(st.sampled_from(POISON + (-1.0, 0.5)))
    return keypoints


@st.composite
def many_persons(draw, image_size=(100.0, 100.0), max_persons=4):
    """(N, 17, 3) float64, N in [0, max_persons]."""
    n = draw(st.integers(0, max_persons))
    people = [draw(person_keypoints(image_size)) for _ in range(n)]
    return np.stack(people) if people else np.zeros((0, NUM_KEYPOINTS, 3))


def finite_labeled(keypoints):
    """(N, 17) bool: v > 0 with x, y, v finite and |x|, |y| <= MAX_COORDINATE (what the library
    counts as labeled), computed independently of it."""
    keypoints = np.asarray(keypoints, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        inside = (np.abs(keypoints[..., :2]) <= MAX_COORDINATE).all(-1)
    return np.isfinite(keypoints).all(-1) & inside & (np.nan_to_num(keypoints[..., 2]) > 0)
