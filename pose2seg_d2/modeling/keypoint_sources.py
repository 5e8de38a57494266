"""
Keypoint sources: where Pose2Seg gets each person's skeleton at inference.

A source is called with the model's ``batched_inputs``, the (height, width) of each input
image as the model sees it (``image_sizes``) and the model's device, and returns, per image,
``(keypoints, person_scores)``: keypoints (N, 17, 3) float32 of
(x, y, v) in the *input image's* continuous coordinates (Detectron2's convention: pixel
(i, j) spans [i, i + 1]; the input image is ``batched_inputs[i]["image"]``, already resized
by the mapper) with v > 0 meaning labeled, and person_scores (N,) float32. They may be on the
host or on the model's device: the model copies host tensors to the device itself, all images
at once (sources that read their persons from the inputs or from a file keep them on the host,
so that the number of persons per image is known there without a device round trip). An
image without persons gives (0, 17, 3) keypoints and (0,) scores.

Predicted keypoints come with a confidence per keypoint instead of a visibility; they are
mapped to (x, y, 2) when the confidence is at least KEYPOINT_CONFIDENCE_THRESHOLD and to
(0, 0, 0) (unlabeled) otherwise, and a person is kept when its score is at least
MIN_PERSON_SCORE and it has at least MIN_CONFIDENT_KEYPOINTS labeled keypoints
(:func:`confident_persons`). The "bottom_up" source, and results files that give each joint's
``keypoint_visibility``, give labeled keypoints their predicted v instead (2 visible, 1 covered).
"""
import json
import logging
import math
import os
from collections import defaultdict

import numpy as np
import torch
import torch.nn.functional as F
from detectron2.utils.registry import Registry

from ..data.validation import is_number
from ..pose.keypoints import NUM_KEYPOINTS

__all__ = [
    "KEYPOINT_SOURCE_REGISTRY",
    "GTKeypointSource",
    "JSONKeypointSource",
    "ModelKeypointSource",
    "KeypointsFileError",
    "build_keypoint_source",
    "confident_persons",
    "load_keypoint_results",
    "image_keys",
]

logger = logging.getLogger(__name__)

KEYPOINT_SOURCE_REGISTRY = Registry("POSE2SEG_KEYPOINT_SOURCE")
KEYPOINT_SOURCE_REGISTRY.__doc__ = """
Registry for keypoint sources, called with (cfg); chosen by
cfg.MODEL.POSE2SEG.KEYPOINT_SOURCE ("gt", "json", "model" and "bottom_up" are short names of
GTKeypointSource, JSONKeypointSource, ModelKeypointSource and BottomUpKeypointSource). A source
with ``reads_backbone_features`` True is also given the model's backbone outputs and backbone, as
``features`` and ``backbone`` (None where the model has none in its input images' frame).
"""

# short config names of the registered sources
_ALIASES = {
    "gt": "GTKeypointSource",
    "json": "JSONKeypointSource",
    "model": "ModelKeypointSource",
    "bottom_up": "BottomUpKeypointSource",  # pose2seg_d2/modeling/bottom_up/source.py
}

# COCO's category id of "person"; results of other categories are not persons
PERSON_CATEGORY_ID = 1


class KeypointsFileError(ValueError):
    """A keypoint results file that cannot be used; the message names the file, entry and field."""


def confident_persons(keypoints, person_scores, confidence_threshold, min_person_score, min_keypoints, flags=None):
    """
    Turn predicted keypoints into Pose2Seg's persons.

    Args:
        keypoints (Tensor): (N, K, 3) of (x, y, confidence), any coordinates.
        person_scores (Tensor): (N,).
        confidence_threshold (float): a keypoint is labeled when its confidence is >= this.
        min_person_score (float), min_keypoints (int): a person is kept when its score is
            >= ``min_person_score`` and it has >= ``min_keypoints`` labeled keypoints.
        flags (Tensor or None): (N, K), the v (1 covered, 2 visible) each labeled keypoint
            gets; None: 2 for all.

    Returns:
        (keypoints (M, K, 3) of (x, y, v) with v = 2 (or ``flags``) for labeled keypoints and
        (0, 0, 0) for the others, person_scores (M,), kept (N,) bool), in the input order. A keypoint with a NaN
        confidence or a non-finite coordinate is unlabeled.
    """
    confident = torch.nan_to_num(keypoints[..., 2], nan=-math.inf) >= confidence_threshold
    labeled = confident & torch.isfinite(keypoints[..., :2]).all(dim=-1)
    out = torch.where(labeled[..., None], keypoints, torch.zeros_like(keypoints))
    v = 2.0 if flags is None else flags.to(out.dtype)
    out[..., 2] = labeled.to(out.dtype) * v
    kept = (person_scores >= min_person_score) & (labeled.sum(dim=-1) >= min_keypoints)
    return out[kept], person_scores[kept], kept


def _filter_options(cfg):
    p = cfg.MODEL.POSE2SEG
    return {
        "confidence_threshold": p.KEYPOINT_CONFIDENCE_THRESHOLD,
        "min_person_score": p.MIN_PERSON_SCORE,
        "min_keypoints": p.MIN_CONFIDENT_KEYPOINTS,
    }


def _input_from_original_scale(x, image_size):
    """(sx, sy) from the original image (``width`` x ``height`` of the input dict) to the input
    image of (height, width) ``image_size``."""
    h, w = image_size
    return w / x.get("width", w), h / x.get("height", h)


def _has_no_persons(instances):
    """Instances of an image without persons: Detectron2's ``annotations_to_instances`` gives
    them no ``gt_keypoints`` (it adds the field only when there are annotations)."""
    return not instances.get_fields() or len(instances) == 0


@KEYPOINT_SOURCE_REGISTRY.register()
class GTKeypointSource:
    """Ground-truth keypoints: ``instances.gt_keypoints`` of each input, where the inputs hold
    them (on the host, as a data loader gives them); every person scores 1. An image without
    persons has an empty (0, 17, 3) ``gt_keypoints`` (:class:`Pose2SegDatasetMapper` gives it
    for an image with no annotations or only crowd regions), or instances without any person
    (as other mappers give it), and gets no persons; an input without instances, or whose
    persons have no ``gt_keypoints``, was not mapped with keypoints, an error."""

    def __init__(self, cfg=None):
        pass

    def __call__(self, batched_inputs, image_sizes, device):
        out = []
        for i, x in enumerate(batched_inputs):
            instances = x.get("instances")
            if instances is not None and not instances.has("gt_keypoints") and _has_no_persons(instances):
                out.append((torch.zeros(0, NUM_KEYPOINTS, 3), torch.zeros(0)))
                continue
            if instances is None or not instances.has("gt_keypoints"):
                raise ValueError(
                    f"KEYPOINT_SOURCE 'gt' needs instances with gt_keypoints, but input {i} "
                    f"({x.get('file_name', 'no file name')}) has none; map it with "
                    "pose2seg_d2.data.Pose2SegDatasetMapper, which keeps keypoints at test time."
                )
            keypoints = instances.gt_keypoints.tensor.to(torch.float32)
            out.append((keypoints, torch.ones(len(keypoints), device=keypoints.device)))
        return out


# ---------------------------------------------------------------------------- json
def load_keypoint_results(path, num_keypoints=NUM_KEYPOINTS):
    """
    Read a COCO keypoint results file: a JSON list of ``{"image_id", "category_id",
    "keypoints": [x1, y1, c1, ...], "score"}`` with coordinates in COCO's pixel-index
    convention (pixel (i, j) is at (i, j)), as pose estimators and Detectron2's evaluator write it.

    Entries whose ``category_id`` is given and is not 1 (person) are skipped and counted; an
    entry without ``score`` scores 1 and one without ``category_id`` is a person. An entry may
    give ``keypoint_visibility``, K numbers in COCO's v (2 visible, 1 covered, 0 not found), as
    the bottom-up model's evaluation writes them: a joint not found is then unlabeled (its
    confidence NaN) whatever its score, and the others keep their v.

    Returns:
        (dict[str, (ndarray (n, K, 3) float32 of (x, y, confidence) in Detectron2's continuous
        coordinates (pixel (i, j) spans [i, i + 1]: +0.5), ndarray (n,) float32 scores,
        ndarray (n, K) float32 v of the labeled joints, 2 without ``keypoint_visibility``)]
        keyed by ``str(image_id)``, number of skipped non-person entries).

    Raises:
        KeypointsFileError: a missing or unreadable file, not a list, or an entry with a
            missing or malformed ``image_id``, ``keypoints`` (not ``3 * num_keypoints``
            numbers), ``score`` or ``keypoint_visibility``; the message names the file, the
            entry index and the field.
    """
    if not os.path.isfile(path):
        raise KeypointsFileError(f"{path}: keypoint results file not found")
    try:
        with open(path) as f:
            entries = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise KeypointsFileError(f"{path}: cannot be read as JSON ({e})") from e
    if not isinstance(entries, list):
        raise KeypointsFileError(
            f"{path}: expected a list of keypoint results (COCO results format), got {type(entries).__name__}"
        )

    def fail(index, entry, field, reason):
        image_id = entry.get("image_id", "?") if isinstance(entry, dict) else "?"
        raise KeypointsFileError(f"{path}: entry {index} (image_id {image_id!r}): field '{field}': {reason}")

    per_image = defaultdict(lambda: ([], [], []))
    skipped = 0
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            fail(index, entry, "<entry>", f"expected an object, got {type(entry).__name__}")
        if "image_id" not in entry:
            fail(index, entry, "image_id", "missing")
        image_id = entry["image_id"]
        if not (isinstance(image_id, str) or (isinstance(image_id, int) and not isinstance(image_id, bool))):
            fail(index, entry, "image_id", f"expected an integer or a string, got {image_id!r}")
        category = entry.get("category_id", PERSON_CATEGORY_ID)
        if category != PERSON_CATEGORY_ID:
            skipped += 1
            continue
        if "keypoints" not in entry:
            fail(index, entry, "keypoints", "missing")
        values = entry["keypoints"]
        if not isinstance(values, list) or len(values) != 3 * num_keypoints:
            got = f"{len(values)} values" if isinstance(values, list) else type(values).__name__
            fail(index, entry, "keypoints", f"expected {3 * num_keypoints} numbers ({num_keypoints} x (x, y, score)), got {got}")
        if not all(is_number(v) or v is None for v in values):
            fail(index, entry, "keypoints", "expected numbers")
        score = entry.get("score", 1.0)
        if not is_number(score) or not math.isfinite(score):
            fail(index, entry, "score", f"expected a finite number, got {score!r}")
        keypoints = np.array([math.nan if v is None else v for v in values], np.float32).reshape(num_keypoints, 3)
        keypoints[:, :2] += 0.5
        flags = np.full(num_keypoints, 2.0, np.float32)
        if "keypoint_visibility" in entry:
            given = entry["keypoint_visibility"]
            if not (
                isinstance(given, list) and len(given) == num_keypoints
                and all(not isinstance(v, bool) and v in (0, 1, 2) for v in given)
            ):  # fmt: skip
                reason = f"expected {num_keypoints} numbers of 0 (not found), 1 (covered) or 2 (visible)"
                fail(index, entry, "keypoint_visibility", reason)
            flags = np.asarray(given, np.float32)
            keypoints[flags == 0, 2] = math.nan
            flags[flags == 0] = 2.0
        per_image[str(image_id)][0].append(keypoints)
        per_image[str(image_id)][1].append(score)
        per_image[str(image_id)][2].append(flags)
    results = {
        key: (np.stack(kpts).astype(np.float32), np.asarray(scores, np.float32), np.stack(flags))
        for key, (kpts, scores, flags) in per_image.items()
    }
    return results, skipped


def image_keys(x):
    """
    The keys an input dict is looked up by in a keypoint results file, in order: its
    ``image_id``, then the stem of its ``file_name`` ("000123") and, for a numeric stem, that
    number ("123"), so ``000123.jpg`` matches image_id 123 and "000123".
    """
    keys = []
    if x.get("image_id") is not None:
        keys.append(str(x["image_id"]))
    if x.get("file_name"):
        stem = os.path.splitext(os.path.basename(x["file_name"]))[0]
        keys.append(stem)
        if stem.isdigit():
            keys.append(str(int(stem)))
    return keys


@KEYPOINT_SOURCE_REGISTRY.register()
class JSONKeypointSource:
    """
    Keypoints from a COCO keypoint results file (MODEL.POSE2SEG.KEYPOINTS_FILE; see
    :func:`load_keypoint_results`). An input finds its entries by :func:`image_keys`; an input
    with no entries has no persons. Coordinates are the original image's (``height`` x
    ``width`` of the input dict) and are scaled to the resized input image.
    """

    def __init__(self, cfg):
        self.path = cfg.MODEL.POSE2SEG.KEYPOINTS_FILE
        if not self.path:
            raise KeypointsFileError("MODEL.POSE2SEG.KEYPOINT_SOURCE is 'json' but MODEL.POSE2SEG.KEYPOINTS_FILE is empty")
        self.path = os.path.expanduser(os.path.expandvars(self.path))
        self.results, skipped = load_keypoint_results(self.path)
        self.filter = _filter_options(cfg)
        num_entries = sum(len(found[1]) for found in self.results.values())
        logger.info(
            f"Keypoint results {self.path}: {num_entries} persons on {len(self.results)} images"
            + (f"; {skipped} entries of other categories skipped" if skipped else "")
        )

    def entries(self, x):
        """(keypoints (n, 17, 3), scores (n,), v flags (n, 17)) NumPy arrays of an input dict, or None
        if it has none (:func:`load_keypoint_results`)."""
        if not image_keys(x):
            raise ValueError(
                "KEYPOINT_SOURCE 'json' looks inputs up by 'image_id' or 'file_name', and this input has neither"
            )
        for key in image_keys(x):
            if key in self.results:
                return self.results[key]
        return None

    def __call__(self, batched_inputs, image_sizes, device):
        # on the host: the file's persons are there, and which of them pass the filters is
        # known there without a device round trip
        out = []
        for i, x in enumerate(batched_inputs):
            found = self.entries(x)
            if found is None:
                out.append((torch.zeros(0, NUM_KEYPOINTS, 3), torch.zeros(0)))
                continue
            keypoints = torch.from_numpy(found[0]).clone()
            scores = torch.from_numpy(found[1])
            sx, sy = _input_from_original_scale(x, image_sizes[i])
            keypoints[..., 0] *= sx
            keypoints[..., 1] *= sy
            flags = torch.from_numpy(found[2])
            keypoints, scores, _ = confident_persons(keypoints, scores, **self.filter, flags=flags)
            out.append((keypoints, scores))
        return out


# ---------------------------------------------------------------------------- model
@KEYPOINT_SOURCE_REGISTRY.register()
class ModelKeypointSource:
    """
    Keypoints predicted by a Detectron2 keypoint model (e.g. Keypoint R-CNN) given by
    MODEL.POSE2SEG.KEYPOINT_MODEL.CONFIG_FILE and .WEIGHTS, run on each input image inside
    Pose2Seg's forward pass. The image is resized to the keypoint model's test size
    (INPUT.MIN_SIZE_TEST / MAX_SIZE_TEST of its config) and its channels reordered to its
    INPUT.FORMAT; its keypoints come back in the input image's coordinates and its box score is
    the person score. The model is kept outside Pose2Seg's modules: Pose2Seg's checkpoints do
    not hold it, and it is always in eval mode.
    """

    def __init__(self, cfg):
        from ..engine.checkpoint import AtomicDetectionCheckpointer
        from detectron2.modeling import build_model

        from ..config import load_config

        p = cfg.MODEL.POSE2SEG.KEYPOINT_MODEL
        if not p.CONFIG_FILE:
            raise ValueError(
                "MODEL.POSE2SEG.KEYPOINT_SOURCE is 'model' but MODEL.POSE2SEG.KEYPOINT_MODEL.CONFIG_FILE is empty"
            )
        config_file = os.path.expanduser(os.path.expandvars(p.CONFIG_FILE))
        if not os.path.isfile(config_file):
            raise FileNotFoundError(f"MODEL.POSE2SEG.KEYPOINT_MODEL.CONFIG_FILE: {config_file} not found")
        opts = ["MODEL.DEVICE", cfg.MODEL.DEVICE]
        if p.WEIGHTS:
            opts += ["MODEL.WEIGHTS", p.WEIGHTS]
        kcfg = load_config(config_file, opts)
        if not kcfg.MODEL.KEYPOINT_ON:
            raise ValueError(f"{config_file}: MODEL.KEYPOINT_ON is False; the keypoint model must predict keypoints")
        if not kcfg.MODEL.WEIGHTS:
            logger.warning(f"The keypoint model {config_file} has no weights: its keypoints are random")
        self.cfg = kcfg
        self.model = build_model(kcfg).eval()
        if kcfg.MODEL.WEIGHTS:
            AtomicDetectionCheckpointer(self.model).load(kcfg.MODEL.WEIGHTS)
        self.flip_channels = kcfg.INPUT.FORMAT != cfg.INPUT.FORMAT
        self.min_size, self.max_size = kcfg.INPUT.MIN_SIZE_TEST, kcfg.INPUT.MAX_SIZE_TEST
        self.filter = _filter_options(cfg)

    def _model_input(self, image):
        """The (3, h, w) input image resized to the keypoint model's test size, as float."""
        image = image.to(self.cfg.MODEL.DEVICE, torch.float32)
        if self.flip_channels:
            image = image.flip(0)
        h, w = image.shape[-2:]
        if self.min_size <= 0:
            return image
        scale = self.min_size / min(h, w)
        if max(h, w) * scale > self.max_size:
            scale = self.max_size / max(h, w)
        new_h, new_w = int(h * scale + 0.5), int(w * scale + 0.5)
        if (new_h, new_w) == (h, w):
            return image
        return F.interpolate(image[None], (new_h, new_w), mode="bilinear", align_corners=False, antialias=True)[0]

    @torch.no_grad()
    def __call__(self, batched_inputs, image_sizes, device):
        inputs = []
        for x, (h, w) in zip(batched_inputs, image_sizes):
            inputs.append({"image": self._model_input(x["image"]), "height": h, "width": w})
        out = []
        for result in self.model(inputs):
            instances = result["instances"]
            keypoints = instances.pred_keypoints.to(device, torch.float32)
            scores = instances.scores.to(device, torch.float32)
            keypoints, scores, _ = confident_persons(keypoints, scores, **self.filter)
            out.append((keypoints, scores))
        return out


def build_keypoint_source(cfg):
    name = cfg.MODEL.POSE2SEG.KEYPOINT_SOURCE
    return KEYPOINT_SOURCE_REGISTRY.get(_ALIASES.get(name, name))(cfg)
