"""
One synthetic scene: figures placed (:mod:`.placement`), dressed in per-person colors and
textures (:mod:`.appearance`) over a cluttered, textured background, and annotated.

Two kinds of scenes:

* *occluded*: a group of 2-4 persons of similar height placed so that every person's box has
  IoU >= 0.5 with another person's (OCHuman's criterion of heavy occlusion); each added
  person wears, with probability 0.35, nearly the same colors as an earlier one, so that
  color alone cannot separate them (0.2 in easy scenes);
* *free*: 1-3 persons placed anywhere (they may still overlap or be cut by the border).

Persons are drawn far to near in a random depth order, so the masks are the *visible* parts
and never overlap within an image.
"""
import numpy as np

from ..max_iou import max_iou
from .appearance import background, palette, texture
from .figure import draw_figure
from .placement import place_free, place_group
from .primitives import PART_LABELS

__all__ = ["IMAGE_SIZES", "render_scene"]

# (width, height): longer side 256
IMAGE_SIZES = ((256, 192), (256, 224), (256, 256), (224, 256), (192, 256))

_MIN_VISIBLE_FRACTION = 0.2
_MIN_VISIBLE_PIXELS = 60
_MIN_LABELED_KEYPOINTS = 5


def _compose(rng, w, h, figures, palettes):
    """Draw the figures far to near over a background; returns the image, each figure's
    label map and the owner map (index of the visible person per pixel, -1 background)."""
    image = background(rng, h, w)
    owner = np.full((h, w), -1, dtype=np.int16)
    label_maps = []
    for i, fig in enumerate(figures):
        lm = np.zeros((h, w), dtype=np.uint8)
        draw_figure(lm, fig)
        label_maps.append(lm)
    order = rng.permutation(len(figures))  # order[0] is the farthest
    for i in order:
        lm = label_maps[i]
        ys, xs = np.nonzero(lm)
        if len(ys) == 0:
            continue
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        crop = lm[y0:y1, x0:x1]
        colors = palettes[i][crop].astype(np.float32)
        factor = np.ones(crop.shape, dtype=np.float32)
        for label in (PART_LABELS["shirt"], PART_LABELS["pants"], PART_LABELS["skirt"], PART_LABELS["coat"]):
            tex = texture(rng, y1 - y0, x1 - x0, x0, y0)
            factor = np.where(crop == label, tex, factor)
        colors = np.clip(colors * factor[..., None], 0, 255).astype(np.uint8)
        on = crop > 0
        image[y0:y1, x0:x1][on] = colors[on]
        owner[y0:y1, x0:x1][on] = i
    return image, label_maps, owner


def _palettes(rng, n, occluded):
    """``n`` persons' palettes; each after the first copies an earlier one (jittered) with
    probability 0.35 in an occluded scene, 0.2 in a free one."""
    palettes = []
    for k in range(n):
        like = None
        if k > 0 and rng.random() < (0.35 if occluded else 0.2):
            like = palettes[int(rng.integers(k))]  # similar clothing
        palettes.append(palette(rng, like))
    return palettes


def _annotate(figures, label_maps, owner, w, h):
    persons = []
    for i, fig in enumerate(figures):
        silhouette = label_maps[i] > 0
        visible = owner == i
        ys, xs = np.nonzero(silhouette)
        if len(ys) == 0:
            return None
        bbox = [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]
        pix = np.floor(fig.keypoints).astype(np.int64)
        keypoints = np.zeros((17, 3), dtype=np.int64)
        for k, (x, y) in enumerate(pix):
            if 0 <= x < w and 0 <= y < h:
                assert silhouette[y, x], "a keypoint off its figure"
                keypoints[k] = (x, y, 2 if visible[y, x] else 1)
        persons.append(
            {
                "keypoints": keypoints,
                "mask": visible,
                "bbox": bbox,
                "area": int(visible.sum()),
                "silhouette_area": int(silhouette.sum()),
                "figure": dict(fig.attributes),
            }
        )
    values = max_iou([p["bbox"] for p in persons], mode="xywh")
    for p, v in zip(persons, values):
        p["max_iou"] = float(v)
    return persons


def _acceptable(persons, occluded):
    """Whether every person shows enough of itself and of its keypoints (and, in an occluded
    scene, is occluded)."""
    for p in persons:
        if p["area"] < max(_MIN_VISIBLE_PIXELS, _MIN_VISIBLE_FRACTION * p["silhouette_area"]):
            return False
        v = p["keypoints"][:, 2]
        if (v > 0).sum() < _MIN_LABELED_KEYPOINTS or (v == 2).sum() < 1:
            return False
        if occluded and p["max_iou"] < 0.5:
            return False
    return True


def render_scene(rng, occluded, image_size=None, max_attempts=200, free_max_iou=None):
    """
    Render one image.

    Args:
        rng (numpy.random.Generator)
        occluded (bool): an occluded group (every person MaxIoU >= 0.5) or an easy scene.
        image_size (tuple[int, int] or None): (width, height); one of :data:`IMAGE_SIZES`
            when None.
        free_max_iou (float or None): in an easy scene, every pair of persons' (clipped)
            boxes stays below this IoU (whole-figure boxes; the annotated boxes are the figures'
            pixels, so their IoU can differ slightly).

    Returns:
        tuple: ``image`` (H, W, 3) uint8 BGR and ``persons``, a list of dicts with
        ``keypoints`` (17, 3) int64 (pixel indices and v), ``mask`` (H, W) bool (visible
        part), ``bbox`` [x, y, w, h] ints, ``area`` (visible pixels), ``silhouette_area``
        (the whole figure inside the image), ``max_iou`` and ``figure`` (the figure's
        attributes).
    """
    for _ in range(max_attempts):
        w, h = image_size if image_size is not None else IMAGE_SIZES[rng.integers(len(IMAGE_SIZES))]
        if occluded:
            n = int(rng.choice([2, 3, 4], p=[0.5, 0.33, 0.17]))
            figures = place_group(rng, w, h, n)
            if figures is None:
                continue
        else:
            figures = place_free(rng, w, h, int(rng.choice([1, 2, 3], p=[0.35, 0.4, 0.25])), free_max_iou)
            if not figures:
                continue
        image, label_maps, owner = _compose(rng, w, h, figures, _palettes(rng, len(figures), occluded))
        persons = _annotate(figures, label_maps, owner, w, h)
        if persons is not None and _acceptable(persons, occluded):
            return image, persons
    raise RuntimeError(f"could not render an acceptable scene in {max_attempts} attempts")
