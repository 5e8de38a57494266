"""
How a Pose2Seg model's mask AP falls as its keypoints look less like the ground truth and more
like a pose estimator's (tools/keypoint_robustness.py, docs/method.md §2.8): the same model
evaluated on one test set with the ground-truth skeletons given through the ``gt`` source, with
their visibility removed, through the ``json`` source, with random person scores, and with the
simulated errors of :mod:`pose2seg_d2.pose.keypoint_noise` (the functions training uses).
"""
import json
import os
from dataclasses import asdict, dataclass

import numpy as np
import torch
from detectron2.data import DatasetCatalog, build_detection_test_loader
from detectron2.evaluation import inference_on_dataset

from ..data.dataset_mapper import Pose2SegDatasetMapper
from ..data.max_iou import MAX_IOU_BUCKETS
from ..data.person_areas import record_areas
from ..modeling.keypoint_sources import PERSON_CATEGORY_ID, GTKeypointSource, JSONKeypointSource
from ..pose.keypoint_noise import KeypointNoise, perturb_keypoints
from ..pose.keypoints import NUM_KEYPOINTS
from .occlusion import OcclusionBucketEvaluator

__all__ = [
    "RobustnessRow",
    "ROBUSTNESS_ROWS",
    "JSON_CONFIDENCE_THRESHOLD",
    "persons_with_keypoints",
    "perturbed_persons",
    "records_with_keypoints",
    "results_entries",
    "evaluate_robustness",
    "robustness_table",
]

# the ``json`` rows write confidence 1 for labeled joints and 0 for the others, and read them
# back with this KEYPOINT_CONFIDENCE_THRESHOLD
JSON_CONFIDENCE_THRESHOLD = 0.5


@dataclass(frozen=True)
class RobustnessRow:
    """One way of giving the model the ground-truth skeletons."""

    name: str  # a short key (file names, JSON)
    label: str  # the table's text
    source: str  # "gt" (the records' annotations, through the mapper) or "json" (a results file)
    remove_visibility: bool = False  # every labeled joint v = 2
    score_range: tuple | None = None  # person scores uniform in [low, high]; None: all 1
    sigma_scale: float = 0.0  # Gaussian displacement, in units of sigma_k sqrt(area)
    drop_prob: float = 0.0  # each labeled joint unlabeled with this probability


ROBUSTNESS_ROWS = (
    RobustnessRow(
        "gt", "ground truth, through the `gt` source (visibility v = 1 / 2 kept, every person scored 1)", "gt"
    ),
    RobustnessRow("gt_v2", "the same, every v = 1 (labeled, occluded) set to v = 2 in the annotations", "gt", True),
    RobustnessRow("json", "the same skeletons as `json` results (all labeled joints alike), score 1", "json", True),
    RobustnessRow("json_scores", "... and person scores drawn at random in [0.5, 1]", "json", True, (0.5, 1.0)),
    RobustnessRow(
        "noise_0.5", "... and every joint moved by Gaussian noise of 0.5 x COCO's OKS sigma x sqrt(area)",
        "json", True, (0.5, 1.0), 0.5,
    ),  # fmt: skip
    RobustnessRow("noise_1", "... 1 x sigma", "json", True, (0.5, 1.0), 1.0),
    RobustnessRow("noise_1_drop_0.1", "... 1 x sigma, 10 % of joints dropped", "json", True, (0.5, 1.0), 1.0, 0.1),
    RobustnessRow("noise_2_drop_0.2", "... 2 x sigma, 20 % dropped", "json", True, (0.5, 1.0), 2.0, 0.2),
)


def persons_with_keypoints(record):
    """Indices of the record's annotations that are persons with keypoints (not crowds)."""
    return [i for i, a in enumerate(record.get("annotations", [])) if not a.get("iscrowd", 0) and "keypoints" in a]


def perturbed_persons(records, row, seed):
    """
    The ground-truth persons of ``records`` as ``row`` gives them, all persons at once.

    Draws from one ``torch.Generator`` seeded with ``seed``: the person scores first, then the
    noise (:func:`perturb_keypoints`), so rows that share a setting share its draws.

    Args:
        records (list[dict]): dataset dicts (keypoints in the original image's continuous
            coordinates).
        row (RobustnessRow): what to change.
        seed (int): the generator's seed.

    Returns:
        (keypoints (N, K, 3) float64, scores (N,) float64, owners): the persons in record
        order, and per person its (record index, annotation index).
    """
    owners = [(r, i) for r, record in enumerate(records) for i in persons_with_keypoints(record)]
    keypoints = torch.tensor(
        [records[r]["annotations"][i]["keypoints"] for r, i in owners], dtype=torch.float64
    ).reshape(-1, NUM_KEYPOINTS, 3)
    generator = torch.Generator().manual_seed(int(seed))
    if row.score_range is None:
        scores = torch.ones(len(owners), dtype=torch.float64)
    else:
        low, high = row.score_range
        scores = low + (high - low) * torch.rand(len(owners), generator=generator, dtype=torch.float64)
    areas = [record_areas(rec, [rec["annotations"][i] for i in persons_with_keypoints(rec)]) for rec in records]
    areas = np.concatenate(areas or [np.zeros(0)])
    noise = KeypointNoise(
        sigma_scale=row.sigma_scale, drop_prob=row.drop_prob, keep_visibility=not row.remove_visibility
    )
    image_index = torch.tensor([r for r, _ in owners], dtype=torch.long)
    keypoints = perturb_keypoints(keypoints, torch.from_numpy(areas), image_index, noise, generator=generator)
    return keypoints, scores, owners


def records_with_keypoints(records, keypoints, owners):
    """Copies of ``records`` whose persons (``owners``) hold ``keypoints`` (N, K, 3); the input
    records are not modified."""
    out = [dict(r, annotations=list(r.get("annotations", []))) for r in records]
    for (r, i), kpt in zip(owners, keypoints.tolist()):
        out[r]["annotations"][i] = dict(out[r]["annotations"][i], keypoints=[c for joint in kpt for c in joint])
    return out


def results_entries(records, keypoints, scores, owners):
    """
    The persons as COCO keypoint results (x, y in pixel-index coordinates): a labeled joint has
    confidence 1, an unlabeled one is (0, 0, 0).
    """
    kpt = keypoints.clone()
    labeled = kpt[..., 2] > 0
    kpt[..., :2] -= 0.5
    kpt[..., 2] = labeled.to(kpt.dtype)
    kpt = torch.where(labeled[..., None], kpt, torch.zeros_like(kpt))
    return [
        {"image_id": records[r]["image_id"], "category_id": PERSON_CATEGORY_ID, "keypoints": k, "score": s}
        for (r, _), k, s in zip(owners, kpt.reshape(len(owners), -1).tolist(), scores.tolist())
    ]


def _json_cfg(cfg, results_file):
    cfg = cfg.clone()
    cfg.defrost()
    cfg.MODEL.POSE2SEG.KEYPOINT_SOURCE = "json"
    cfg.MODEL.POSE2SEG.KEYPOINTS_FILE = results_file
    cfg.MODEL.POSE2SEG.KEYPOINT_CONFIDENCE_THRESHOLD = JSON_CONFIDENCE_THRESHOLD
    cfg.MODEL.POSE2SEG.MIN_PERSON_SCORE = 0.0
    return cfg


def _metrics_row(row, metrics, extra):
    segm = metrics.get("segm", {})
    buckets = metrics.get("segm_by_max_iou", {})
    finite = lambda v: None if v is None or not np.isfinite(v) else float(v)  # noqa: E731
    return {
        **asdict(row),
        "AP": finite(segm.get("AP")),
        "AP50": finite(segm.get("AP50")),
        "AP75": finite(segm.get("AP75")),
        "AP_by_max_iou": {name: finite(buckets.get(f"AP_{name}")) for name, _, _ in MAX_IOU_BUCKETS},
        **extra,
    }


def evaluate_robustness(model, cfg, dataset, output_dir, rows=ROBUSTNESS_ROWS, seed=0):
    """
    Mask AP of ``model`` on ``dataset`` for every row.

    Args:
        model (nn.Module): a model with a ``keypoint_source`` (Pose2Seg), in eval mode; its
            source is swapped per row and restored.
        cfg (CfgNode): its config (the test mapper's sizes, the ``json`` source's filters
            MIN_CONFIDENT_KEYPOINTS; the ``json`` rows use KEYPOINT_CONFIDENCE_THRESHOLD
            :data:`JSON_CONFIDENCE_THRESHOLD` and MIN_PERSON_SCORE 0).
        dataset (str): a registered dataset.
        output_dir (str): each row's results file and evaluation go in ``output_dir/<name>/``.
        rows (sequence[RobustnessRow]): the rows.
        seed (int): :func:`perturbed_persons`'s seed, the same for every row.

    Returns:
        list[dict]: per row its settings, AP, AP50, AP75, AP by MaxIoU bucket, ``persons`` and,
        for the ``json`` rows, ``persons_left_out`` (those with fewer than
        MIN_CONFIDENT_KEYPOINTS labeled joints, which the ``json`` source does not segment).
    """
    records = DatasetCatalog.get(dataset)
    mapper = Pose2SegDatasetMapper(cfg, False)
    original_source = model.keypoint_source
    out = []
    try:
        for row in rows:
            folder = os.path.join(output_dir, row.name)
            os.makedirs(folder, exist_ok=True)
            keypoints, scores, owners = perturbed_persons(records, row, seed)
            extra = {"persons": len(owners)}
            if row.source == "gt":
                model.keypoint_source = GTKeypointSource()
                row_records = records_with_keypoints(records, keypoints, owners)
            elif row.source == "json":
                results_file = os.path.join(folder, "keypoints_results.json")
                with open(results_file, "w") as f:
                    json.dump(results_entries(records, keypoints, scores, owners), f)
                model.keypoint_source = JSONKeypointSource(_json_cfg(cfg, results_file))
                labeled = (keypoints[..., 2] > 0).sum(-1)
                extra["persons_left_out"] = int((labeled < cfg.MODEL.POSE2SEG.MIN_CONFIDENT_KEYPOINTS).sum())
                row_records = records
            else:
                raise ValueError(f"row {row.name!r}: source must be 'gt' or 'json', got {row.source!r}")
            loader = build_detection_test_loader(row_records, mapper=mapper, num_workers=cfg.DATALOADER.NUM_WORKERS)
            evaluator = OcclusionBucketEvaluator(dataset, distributed=False, output_dir=folder)
            metrics = inference_on_dataset(model, loader, evaluator)
            out.append(_metrics_row(row, metrics, extra))
    finally:
        model.keypoint_source = original_source
    return out


def robustness_table(results):
    """The rows as a markdown table (AP in %)."""
    fmt = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
    names = [name for name, _, _ in MAX_IOU_BUCKETS]
    header = "| keypoints given | AP | AP50 | AP75 | " + " | ".join(f"MaxIoU {n}" for n in names) + " |"
    lines = [header, "|" + "---|" * (4 + len(names))]
    for r in results:
        buckets = " | ".join(fmt(r["AP_by_max_iou"][n]) for n in names)
        lines.append(f"| {r['label']} | {fmt(r['AP'])} | {fmt(r['AP50'])} | {fmt(r['AP75'])} | {buckets} |")
    return "\n".join(lines)
