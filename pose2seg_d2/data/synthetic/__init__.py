"""
The synthetic occluded-human benchmark: the embedded default dataset (no download).

Each image shows articulated figures with per-person clothing colors and textures over a
cluttered, textured background, in occluded groups or placed freely; every split is
generated on first use and is byte-identical for a seed. The modules, bottom up:

* :mod:`.primitives`: circles, capsules and polygons that draw themselves into a label map
  of body-part classes;
* :mod:`.skeleton`: pose kinds, joint angles, body proportions and the projected keypoints;
* :mod:`.outfit` and :mod:`.body_parts`: clothes, hair, hats and bags, as primitives;
* :mod:`.figure`: :func:`sample_figure` and :func:`draw_figure`;
* :mod:`.appearance`: colors, textures and the background;
* :mod:`.placement` and :mod:`.scenes`: where the figures stand, and :func:`render_scene`;
* :mod:`.statistics`: per-split statistics;
* :mod:`.writing`: the splits, the files and the generator version of a cached dataset.
"""
from .figure import Figure, draw_figure, sample_figure
from .outfit import OUTFITS
from .primitives import NUM_PART_LABELS, PART_LABELS, Capsule, Circle, Polygon
from .scenes import IMAGE_SIZES, render_scene
from .skeleton import POSE_KINDS
from .statistics import dataset_statistics, format_statistics
from .writing import (
    DEFAULT_COUNTS,
    DEFAULT_SEED,
    GENERATOR_VERSION,
    SPLITS,
    ensure_synthetic_dataset,
    generate_split,
    generate_synthetic_dataset,
    generated_version,
    is_synthetic_dataset_complete,
)

__all__ = [
    "SPLITS",
    "DEFAULT_SEED",
    "DEFAULT_COUNTS",
    "GENERATOR_VERSION",
    "IMAGE_SIZES",
    "render_scene",
    "generate_split",
    "generate_synthetic_dataset",
    "ensure_synthetic_dataset",
    "is_synthetic_dataset_complete",
    "generated_version",
    "dataset_statistics",
    "format_statistics",
    "POSE_KINDS",
    "PART_LABELS",
    "NUM_PART_LABELS",
    "OUTFITS",
    "Figure",
    "Circle",
    "Capsule",
    "Polygon",
    "sample_figure",
    "draw_figure",
]
