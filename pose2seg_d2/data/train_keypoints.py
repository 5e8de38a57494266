"""
Training from a pose estimator's keypoints (MODEL.POSE2SEG.TRAIN_KEYPOINTS_FILE,
docs/method.md §2.8): each ground-truth person of the training records takes the predicted
skeleton matched to it by OKS, so that Pose2Seg learns from the keypoints it is given at test
time. Masks, boxes and everything else of the records stay the ground truth.

The substitution happens on the dataset dicts, before the mapper: the predicted keypoints are
then resized, flipped (with the flip map) and clipped exactly as ground-truth ones are.
"""
import logging
import os

import numpy as np
import torch

from ..modeling.keypoint_sources import KeypointsFileError, confident_persons, image_keys, load_keypoint_results
from ..pose.oks import object_keypoint_similarity
from .person_areas import annotation_box, record_areas

__all__ = [
    "UNMATCHED_RULES",
    "match_by_oks",
    "substitute_predicted_keypoints",
    "train_dicts_with_predicted_keypoints",
]

logger = logging.getLogger(__name__)

# what becomes of a ground-truth person no prediction matches
UNMATCHED_RULES = ("keep_gt", "drop")


def match_by_oks(oks, scores, min_oks):
    """
    One-to-one matching of predictions to ground-truth persons, as COCO's keypoint evaluation
    matches: predictions in order of decreasing score (ties in input order), each taking the
    not yet matched person of highest OKS, if that OKS is at least ``min_oks``.

    Args:
        oks (Tensor): (P, G) OKS of each prediction with each person.
        scores (Tensor): (P,) prediction scores.
        min_oks (float): the least OKS of a match.

    Returns:
        Tensor (P,) long: the matched person of each prediction, -1 for none.
    """
    oks = torch.as_tensor(oks, dtype=torch.float64)
    num_pred, num_gt = oks.shape
    matched = torch.full((num_pred,), -1, dtype=torch.long)
    if num_pred == 0 or num_gt == 0:
        return matched
    taken = torch.zeros(num_gt, dtype=torch.bool)
    order = torch.argsort(torch.as_tensor(scores, dtype=torch.float64), descending=True, stable=True)
    # sequential by nature (each match takes a person from the later ones); runs once per image
    # when the training records are built
    for p in order.tolist():
        candidates = torch.where(taken, torch.full_like(oks[p], -torch.inf), oks[p])
        best = int(torch.argmax(candidates))
        if candidates[best] >= min_oks:
            matched[p] = best
            taken[best] = True
    return matched


def _lookup(results, record):
    """The first of the record's :func:`image_keys` that ``results`` holds, or None."""
    for key in image_keys(record):
        if key in results:
            return key
    return None


def substitute_predicted_keypoints(
    records, results, *, min_oks, unmatched, confidence_threshold, min_person_score, min_keypoints, path=""
):
    """
    The records with each ground-truth person's keypoints replaced by its matched prediction's.

    Args:
        records (list[dict]): Detectron2 dataset dicts (keypoints in continuous coordinates of
            the original image).
        results (dict): :func:`load_keypoint_results`'s, keyed by image id (or file stem).
        min_oks (float): the least OKS of a match (:func:`match_by_oks`).
        unmatched (str): "keep_gt" (a person without a match keeps its annotated keypoints)
            or "drop" (its annotation is left out of the record: no training instance).
        confidence_threshold, min_person_score, min_keypoints: the ``json`` source's filters
            (:func:`confident_persons`): only predictions passing them are matched, and their
            joints below the threshold are unlabeled (0, 0, 0); the others get the file's v
            (``keypoint_visibility``: 1 covered, 2 visible; 2 without it).
        path (str): the results file, for the messages.

    Returns:
        (list[dict], dict): new records (the input ones are not modified; crowd annotations are
        kept as they are) and counts: ``images``, ``images_without_predictions``, ``persons``,
        ``matched``, ``unmatched_kept``, ``unmatched_dropped``, ``predictions``,
        ``predictions_filtered_out``, ``predictions_unmatched``.

    Raises:
        ValueError: an unknown ``unmatched`` rule.
        KeypointsFileError: results for images that are not among the records (naming the file
            and the first such ids), or two records with the same image key.
    """
    if unmatched not in UNMATCHED_RULES:
        raise ValueError(
            f"MODEL.POSE2SEG.TRAIN_KEYPOINTS_UNMATCHED must be one of {UNMATCHED_RULES}, got {unmatched!r}"
        )
    counts = dict.fromkeys(
        ("images", "images_without_predictions", "persons", "matched", "unmatched_kept", "unmatched_dropped",
         "predictions", "predictions_filtered_out", "predictions_unmatched"), 0,
    )  # fmt: skip
    used = {}
    out = []
    for record in records:
        counts["images"] += 1
        key = _lookup(results, record)
        if key is not None:
            if key in used:
                raise KeypointsFileError(
                    f"{path}: image key {key!r} names two training records ({used[key]} and "
                    f"{record.get('file_name')}); give each image of DATASETS.TRAIN its own image_id"
                )
            used[key] = record.get("file_name")
        annotations = record.get("annotations", [])
        persons = [i for i, a in enumerate(annotations) if not a.get("iscrowd", 0) and "keypoints" in a]
        counts["persons"] += len(persons)
        matched_keypoints = {}
        if key is None:
            counts["images_without_predictions"] += 1
        else:
            raw, scores, flags = (torch.from_numpy(v) for v in results[key])
            labeled, scores, kept = confident_persons(
                raw, scores, confidence_threshold, min_person_score, min_keypoints, flags=flags
            )
            counts["predictions"] += int(kept.sum())
            counts["predictions_filtered_out"] += int((~kept).sum())
            if persons and len(scores):
                gt = np.array([annotations[i]["keypoints"] for i in persons], np.float64).reshape(len(persons), -1, 3)
                areas = record_areas(record, [annotations[i] for i in persons])
                boxes = [annotation_box(annotations[i]) for i in persons]
                oks = object_keypoint_similarity(raw[kept], gt, areas, boxes)
                match = match_by_oks(oks, scores, min_oks)
            else:
                match = torch.full((len(scores),), -1, dtype=torch.long)
            counts["predictions_unmatched"] += int((match < 0).sum())
            for p, g in enumerate(match.tolist()):
                if g >= 0:
                    matched_keypoints[persons[g]] = labeled[p]
        new_annotations = []
        for i, anno in enumerate(annotations):
            if i in matched_keypoints:
                anno = dict(anno, keypoints=matched_keypoints[i].to(torch.float64).reshape(-1).tolist())
                counts["matched"] += 1
            elif i in persons:
                if unmatched == "drop":
                    counts["unmatched_dropped"] += 1
                    continue
                counts["unmatched_kept"] += 1
            new_annotations.append(anno)
        out.append(dict(record, annotations=new_annotations))
    unknown = sorted(set(results) - set(used))
    if unknown:
        shown = ", ".join(repr(k) for k in unknown[:5]) + (", ..." if len(unknown) > 5 else "")
        raise KeypointsFileError(
            f"{path}: keypoint results for {len(unknown)} image(s) that are not in DATASETS.TRAIN "
            f"(image_id {shown}); TRAIN_KEYPOINTS_FILE must be the results on the training split"
        )
    return out, counts


def train_dicts_with_predicted_keypoints(cfg):
    """
    The dataset dicts of cfg.DATASETS.TRAIN, with the keypoints of MODEL.POSE2SEG.TRAIN_KEYPOINTS_FILE
    (:func:`substitute_predicted_keypoints`), then filtered as Detectron2's train loader filters
    (DATALOADER.FILTER_EMPTY_ANNOTATIONS; ROI_KEYPOINT_HEAD.MIN_KEYPOINTS_PER_IMAGE when
    MODEL.KEYPOINT_ON), so that an image whose persons were all dropped is left out with them.
    """
    from detectron2.data.build import (
        filter_images_with_few_keypoints,
        filter_images_with_only_crowd_annotations,
        get_detection_dataset_dicts,
    )

    p = cfg.MODEL.POSE2SEG
    path = os.path.expanduser(os.path.expandvars(p.TRAIN_KEYPOINTS_FILE))
    records = get_detection_dataset_dicts(cfg.DATASETS.TRAIN, filter_empty=False, min_keypoints=0)
    results, skipped = load_keypoint_results(path)
    records, counts = substitute_predicted_keypoints(
        records, results,
        min_oks=p.TRAIN_KEYPOINTS_MIN_OKS, unmatched=p.TRAIN_KEYPOINTS_UNMATCHED,
        confidence_threshold=p.KEYPOINT_CONFIDENCE_THRESHOLD, min_person_score=p.MIN_PERSON_SCORE,
        min_keypoints=p.MIN_CONFIDENT_KEYPOINTS, path=path,
    )  # fmt: skip
    logger.info(
        f"Training keypoints from {path}: {counts['matched']} of {counts['persons']} persons matched "
        f"(OKS >= {p.TRAIN_KEYPOINTS_MIN_OKS}); unmatched: {counts['unmatched_kept']} keep their ground "
        f"truth, {counts['unmatched_dropped']} dropped; {counts['predictions']} predictions used, "
        f"{counts['predictions_unmatched']} of them unmatched, {counts['predictions_filtered_out']} "
        f"filtered out; {counts['images_without_predictions']} of {counts['images']} images without "
        "predictions" + (f"; {skipped} entries of other categories skipped" if skipped else "")
    )
    if cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS:
        records = filter_images_with_only_crowd_annotations(records)
    min_keypoints = cfg.MODEL.ROI_KEYPOINT_HEAD.MIN_KEYPOINTS_PER_IMAGE if cfg.MODEL.KEYPOINT_ON else 0
    if min_keypoints > 0:
        records = filter_images_with_few_keypoints(records, min_keypoints)
    return records
