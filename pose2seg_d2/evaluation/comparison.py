"""
Side-by-side runs of Pose2Seg and Mask R-CNN: train (or load), evaluate by occlusion, time
inference on the same images, and write the table and the figures.
"""
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.data import DatasetCatalog, DatasetMapper, MetadataCatalog, build_detection_test_loader
from detectron2.evaluation import inference_on_dataset
from detectron2.utils.events import EventStorage

from ..config import load_config
from ..data.dataset_mapper import Pose2SegDatasetMapper
from ..engine import Pose2SegTrainer, uses_pose2seg
from .figures import masks_panel, plot_ap_by_max_iou, titled_grid
from .occlusion import MAX_IOU_BUCKETS, OcclusionBucketEvaluator

__all__ = [
    "ModelRun",
    "load_config",
    "run_model",
    "train_keypoint_model",
    "write_results",
    "write_figures",
    "describe_config",
]

logger = logging.getLogger(__name__)


@dataclass
class ModelRun:
    """One row of the comparison."""

    model: str  # "pose2seg" | "mask_rcnn"
    keypoints: str | None  # "gt" | "predicted" | None
    label: str
    config: dict
    metrics: dict = field(default_factory=dict)
    ms_per_image: float = math.nan
    train_iters: int = 0
    train_seconds: float = 0.0
    predictions: list = field(default_factory=list)  # Instances of the figure images

    def row(self):
        by_bucket = {
            name: _finite_or_none(self.metrics.get("segm_by_max_iou", {}).get(f"AP_{name}"))
            for name, _, _ in MAX_IOU_BUCKETS
        }
        segm = self.metrics.get("segm", {})
        return {
            "model": self.model,
            "keypoints": self.keypoints,
            "label": self.label,
            "AP": _finite_or_none(segm.get("AP")),
            "AP50": _finite_or_none(segm.get("AP50")),
            "AP75": _finite_or_none(segm.get("AP75")),
            "AP_by_max_iou": by_bucket,
            "ms_per_image": _finite_or_none(self.ms_per_image),
            "train_iters": self.train_iters,
            "train_seconds": round(self.train_seconds, 1),
            "config": self.config,
        }


def _finite_or_none(value):
    return None if value is None or not math.isfinite(float(value)) else float(value)


def describe_config(cfg):
    """What the table states about a run's setting."""
    out = {
        "backbone": f"R-{cfg.MODEL.RESNETS.DEPTH}-FPN ({cfg.MODEL.FPN.OUT_CHANNELS} ch, {cfg.MODEL.RESNETS.NORM})",
        "input": f"short side {cfg.INPUT.MIN_SIZE_TEST} (train {list(cfg.INPUT.MIN_SIZE_TRAIN)}), max {cfg.INPUT.MAX_SIZE_TEST}",
        "train_data": ", ".join(cfg.DATASETS.TRAIN),
        "optimizer": f"{cfg.SOLVER.OPTIMIZER} lr {cfg.SOLVER.BASE_LR} batch {cfg.SOLVER.IMS_PER_BATCH}",
    }
    if uses_pose2seg(cfg):
        p = cfg.MODEL.POSE2SEG
        s = p.SEG_MODULE
        out["head"] = (
            f"SegModule {s.NUM_UNITS} units {s.BOTTLENECK_CHANNELS}->{s.UNIT_OUT_CHANNELS}, stem "
            f"{s.STEM_CHANNELS}, window {p.WINDOW_SIZE[0]}x{p.WINDOW_SIZE[1]}"
        )
    else:
        out["head"] = (
            f"box FC {cfg.MODEL.ROI_BOX_HEAD.FC_DIM}, mask {cfg.MODEL.ROI_MASK_HEAD.NUM_CONV}x"
            f"{cfg.MODEL.ROI_MASK_HEAD.CONV_DIM}"
        )
    return out


def _without_test_sets(cfg):
    """A mutable copy of ``cfg`` without DATASETS.TEST (the caller evaluates), its OUTPUT_DIR made."""
    cfg = cfg.clone()
    cfg.defrost()
    cfg.DATASETS.TEST = ()
    os.makedirs(cfg.OUTPUT_DIR, exist_ok=True)
    return cfg


def train_or_load(cfg, weights=None):
    """
    Build the model of ``cfg`` and load ``weights``, or, without them, train it with
    :class:`Pose2SegTrainer`.

    Returns:
        (model in eval mode, iterations trained, seconds of training); 0 and 0.0 when loaded.
    """
    if weights:
        model = Pose2SegTrainer.build_model(cfg)
        DetectionCheckpointer(model).load(weights)
        return model.eval(), 0, 0.0
    trainer = Pose2SegTrainer(cfg)
    trainer.resume_or_load(resume=False)
    start = time.perf_counter()
    trainer.train()
    return trainer.model.eval(), trainer.iter - trainer.start_iter, time.perf_counter() - start


def run_model(run, cfg, dataset, weights=None, timing_images=50, figure_images=()):
    """
    Train (unless ``weights``) and evaluate one model on ``dataset``; fills ``run``.

    Returns:
        the model.
    """
    cfg = _without_test_sets(cfg)  # evaluated below, once
    model, run.train_iters, run.train_seconds = train_or_load(cfg, weights)

    evaluator = OcclusionBucketEvaluator(dataset, distributed=False, output_dir=os.path.join(cfg.OUTPUT_DIR, "eval"))
    loader = Pose2SegTrainer.build_test_loader(cfg, dataset)
    run.metrics = inference_on_dataset(model, loader, evaluator)
    run.ms_per_image = time_inference(model, cfg, dataset, timing_images)
    run.predictions = predict(model, cfg, dataset, figure_images)
    return model


def train_keypoint_model(cfg, dataset, weights=None):
    """
    Train a Detectron2 keypoint model (unless ``weights``) and measure its keypoint AP on
    ``dataset``.

    Returns:
        dict: ``weights`` (the file to load it from), ``iters`` and ``seconds`` of training (0
        when loaded), ``keypoint_AP`` (COCO OKS AP in %, None if it cannot be computed).
    """
    from detectron2.evaluation import COCOEvaluator

    from ..data.dataset_mapper import ValidatingDatasetMapper

    cfg = _without_test_sets(cfg)
    model, iters, seconds = train_or_load(cfg, weights)
    out = {
        "weights": weights or os.path.join(cfg.OUTPUT_DIR, "model_final.pth"),
        "iters": iters,
        "seconds": seconds,
        "keypoint_AP": None,
    }
    loader = build_detection_test_loader(cfg, dataset, mapper=ValidatingDatasetMapper(cfg, False))
    evaluator = COCOEvaluator(dataset, tasks=("keypoints",), distributed=False, output_dir=os.path.join(cfg.OUTPUT_DIR, "eval"))
    metrics = inference_on_dataset(model, loader, evaluator)
    out["keypoint_AP"] = _finite_or_none(metrics.get("keypoints", {}).get("AP"))
    return out


def _mapped_inputs(cfg, dataset, indices):
    """The model inputs of some images, mapped as the test loader maps them."""
    mapper = Pose2SegDatasetMapper(cfg, False) if uses_pose2seg(cfg) else DatasetMapper(cfg, False)
    dicts = DatasetCatalog.get(dataset)
    return [mapper(dicts[i]) for i in indices]


def time_inference(model, cfg, dataset, num_images):
    """Mean milliseconds of ``model([input])`` over the first ``num_images`` images (after a warm-up)."""
    inputs = _mapped_inputs(cfg, dataset, range(min(num_images, len(DatasetCatalog.get(dataset)))))
    if not inputs:
        return math.nan
    with torch.no_grad(), EventStorage():
        model([inputs[0]])
        start = time.perf_counter()
        for x in inputs:
            model([x])
    return 1000.0 * (time.perf_counter() - start) / len(inputs)


def predict(model, cfg, dataset, indices):
    inputs = _mapped_inputs(cfg, dataset, indices)
    with torch.no_grad():
        return [model([x])[0]["instances"].to("cpu") for x in inputs]


def write_results(output_dir, dataset, runs, settings_note=""):
    """results.json and results.md; returns the markdown text."""
    rows = [r.row() for r in runs]
    with open(os.path.join(output_dir, "results.json"), "w") as f:
        json.dump({"dataset": dataset, "rows": rows}, f, indent=2)

    def fmt(v, digits=1):
        return "-" if v is None else f"{v:.{digits}f}"

    buckets = [name for name, _, _ in MAX_IOU_BUCKETS]
    lines = [
        f"# Pose2Seg vs Mask R-CNN on `{dataset}`",
        "",
        "Mask AP (COCO protocol, %); AP by MaxIoU bucket counts only the persons of the bucket "
        "(others ignored); time per image measured in the same run on the same images; \"-\" "
        "train columns: weights loaded, not trained in this run.",
        "",
        "| model | keypoints | AP | AP50 | AP75 | " + " | ".join(f"AP MaxIoU {b}" for b in buckets)
        + " | ms / image | train iters | train s |",
        "|---" * (8 + len(buckets)) + "|",
    ]
    for row in rows:
        lines.append(
            f"| {row['model']} | {row['keypoints'] or '-'} | {fmt(row['AP'])} | {fmt(row['AP50'])} | "
            f"{fmt(row['AP75'])} | " + " | ".join(fmt(row["AP_by_max_iou"][b]) for b in buckets)
            + f" | {fmt(row['ms_per_image'], 0)} | {row['train_iters'] or '-'} | "
            + f"{fmt(row['train_seconds'] or None, 0)} |"
        )
    lines += ["", "Settings (the same backbone, input size, iterations and training data for every row):", ""]
    lines += ["| model | " + " | ".join(rows[0]["config"]) + " |", "|---" * (1 + len(rows[0]["config"])) + "|"]
    for row in rows:
        lines.append(f"| {row['label']} | " + " | ".join(str(v) for v in row["config"].values()) + " |")
    if settings_note:
        lines += ["", settings_note]
    text = "\n".join(lines) + "\n"
    with open(os.path.join(output_dir, "results.md"), "w") as f:
        f.write(text)
    return text


def write_figures(output_dir, dataset, runs, indices):
    """One grid PNG per image (input | ground truth | one panel per run) and the AP plot."""
    from detectron2.data.detection_utils import read_image
    from pycocotools import mask as mask_util

    metadata = MetadataCatalog.get(dataset)
    dicts = DatasetCatalog.get(dataset)
    paths = []
    for k, index in enumerate(indices):
        record = dicts[index]
        image = read_image(record["file_name"], format="RGB")
        h, w = image.shape[:2]
        gt_masks = []
        for ann in record.get("annotations", []):
            seg = ann["segmentation"]
            if isinstance(seg, dict):
                rle = seg if not isinstance(seg["counts"], list) else mask_util.frPyObjects(seg, h, w)
            else:
                rle = mask_util.merge(mask_util.frPyObjects(seg, h, w))
            gt_masks.append(mask_util.decode(rle).astype(bool))
        panels = [("input", image), ("ground truth", masks_panel(image, gt_masks, metadata))]
        for run in runs:
            instances = run.predictions[k]
            keep = instances.scores >= 0.5
            masks = [m.numpy() for m in instances.pred_masks[keep]]
            panels.append((run.label, masks_panel(image, masks, metadata)))
        path = os.path.join(output_dir, f"grid_{index:04d}.png")
        cv2.imwrite(path, cv2.cvtColor(titled_grid(panels), cv2.COLOR_RGB2BGR))
        paths.append(path)
    plot_path = os.path.join(output_dir, "ap_by_max_iou.png")
    plot_ap_by_max_iou([r.row() for r in runs], plot_path, title=f"Mask AP by occlusion on {dataset}")
    return paths, plot_path
