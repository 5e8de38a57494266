"""
Side-by-side runs of Pose2Seg, Mask R-CNN and the keypoints-only reference: train (or load),
evaluate by occlusion on several test sets, time inference on the same images, and write the
tables and the figures.
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

from ..config import load_config
from ..data.dataset_mapper import Pose2SegDatasetMapper
from ..engine import Pose2SegTrainer, uses_pose2seg
from .figures import masks_panel, plot_ap_by_max_iou, titled_grid
from .occlusion import MAX_IOU_BUCKETS, OcclusionBucketEvaluator

__all__ = [
    "ModelRun",
    "TimedModel",
    "load_config",
    "train_or_load",
    "evaluate_run",
    "keypoint_ap",
    "write_results",
    "write_figures",
    "describe_config",
]

logger = logging.getLogger(__name__)


@dataclass
class ModelRun:
    """One row of the comparison."""

    model: str  # "pose2seg" | "mask_rcnn" | "keypoints_only"
    keypoints: str | None  # "gt" | "predicted" | None
    label: str
    config: dict
    dataset: str = ""
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
            "dataset": self.dataset,
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


def describe_initialization(cfg):
    """How the model's weights start: "random", or the file of MODEL.WEIGHTS (with the sha256
    recorded next to a packaged backbone)."""
    weights = cfg.MODEL.WEIGHTS
    if not weights:
        return "random"
    try:
        from ..assets_path import PACKAGE_ASSETS_PREFIX, package_asset_path

        if weights.startswith(PACKAGE_ASSETS_PREFIX):
            record = os.path.splitext(package_asset_path(weights))[0] + ".json"
            with open(record) as f:
                digest = json.load(f).get("sha256", "")
            return f"{weights} (sha256 {digest[:12]})" if digest else weights
    except (OSError, ValueError):
        pass
    return weights


def describe_config(cfg):
    """What the table states about a run's setting."""
    if cfg.MODEL.META_ARCHITECTURE == "KeypointsOnlyMasks":
        k = cfg.MODEL.KEYPOINTS_ONLY
        return {
            "backbone": "none (no image)",
            "init": "nothing learned",
            "input": f"keypoints ({cfg.MODEL.POSE2SEG.KEYPOINT_SOURCE})",
            "train_data": "-",
            "optimizer": "-",
            "head": f"filled figure: arm {k.ARM_WIDTH:g}, leg/torso {k.LEG_WIDTH:g}, head {k.HEAD_RADIUS:g} x torso length",
        }
    frozen = cfg.MODEL.BACKBONE.FREEZE_AT
    out = {
        "backbone": f"R-{cfg.MODEL.RESNETS.DEPTH}-FPN ({cfg.MODEL.FPN.OUT_CHANNELS} ch, {cfg.MODEL.RESNETS.NORM}"
        + (f", stages <= {frozen} frozen)" if frozen else ")"),
        "init": describe_initialization(cfg),
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
    :class:`Pose2SegTrainer` (DATASETS.TEST left out: the caller evaluates). A model with
    nothing to learn (the keypoints-only reference) is only built.

    Returns:
        (model in eval mode, iterations trained, seconds of training); 0 and 0.0 when loaded.
    """
    cfg = _without_test_sets(cfg)
    if weights or cfg.MODEL.META_ARCHITECTURE == "KeypointsOnlyMasks":
        model = Pose2SegTrainer.build_model(cfg)
        if weights:
            DetectionCheckpointer(model).load(weights)
        return model.eval(), 0, 0.0
    trainer = Pose2SegTrainer(cfg)
    trainer.resume_or_load(resume=False)
    start = time.perf_counter()
    trainer.train()
    return trainer.model.eval(), trainer.iter - trainer.start_iter, time.perf_counter() - start


class TimedModel(torch.nn.Module):
    """
    Wraps a model to time its calls (synchronizing CUDA first), skipping the first
    ``warmup`` calls: :attr:`ms_per_image` is the mean over the images of the timed calls.
    """

    def __init__(self, model, warmup=2):
        super().__init__()
        self.model = model
        self.warmup = warmup
        self.calls, self.images, self.seconds = 0, 0, 0.0

    def forward(self, inputs):
        cuda = next(iter(self.model.buffers()), torch.zeros(())).is_cuda
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = self.model(inputs)
        if cuda:
            torch.cuda.synchronize()
        self.calls += 1
        if self.calls > self.warmup:
            self.seconds += time.perf_counter() - start
            self.images += len(inputs)
        return out

    @property
    def ms_per_image(self):
        return 1000.0 * self.seconds / self.images if self.images else math.nan


def evaluate_run(run, model, cfg, dataset, figure_images=()):
    """
    Mask AP of ``model`` on ``dataset`` (overall and by MaxIoU bucket), its inference time per
    image over the same images, and its predictions on ``figure_images`` (indices); fills
    ``run`` (with ``run.dataset``).
    """
    run.dataset = dataset
    evaluator = OcclusionBucketEvaluator(
        dataset, distributed=False, output_dir=os.path.join(cfg.OUTPUT_DIR, "eval", dataset)
    )
    # in eval mode: inference_on_dataset restores the wrapper's mode, and with it the model's
    timed = TimedModel(model).eval()
    loader = Pose2SegTrainer.build_test_loader(cfg, dataset)
    run.metrics = inference_on_dataset(timed, loader, evaluator)
    run.ms_per_image = timed.ms_per_image
    run.predictions = predict(model, cfg, dataset, figure_images)
    return run


def keypoint_ap(model, cfg, dataset):
    """COCO keypoint AP (OKS, %) of a Detectron2 keypoint model on ``dataset`` (None if it
    cannot be computed)."""
    from detectron2.evaluation import COCOEvaluator

    from ..data.dataset_mapper import ValidatingDatasetMapper

    loader = build_detection_test_loader(cfg, dataset, mapper=ValidatingDatasetMapper(cfg, False))
    evaluator = COCOEvaluator(
        dataset, tasks=("keypoints",), distributed=False, output_dir=os.path.join(cfg.OUTPUT_DIR, "eval", dataset)
    )
    metrics = inference_on_dataset(model, loader, evaluator)
    return _finite_or_none(metrics.get("keypoints", {}).get("AP"))


def _mapped_inputs(cfg, dataset, indices):
    """The model inputs of some images, mapped as the test loader maps them."""
    mapper = Pose2SegDatasetMapper(cfg, False) if uses_pose2seg(cfg) else DatasetMapper(cfg, False)
    dicts = DatasetCatalog.get(dataset)
    return [mapper(dicts[i]) for i in indices]


def predict(model, cfg, dataset, indices):
    inputs = _mapped_inputs(cfg, dataset, indices)
    with torch.no_grad():
        return [model([x])[0]["instances"].to("cpu") for x in inputs]


def _fmt(v, digits=1):
    return "-" if v is None else f"{v:.{digits}f}"


def write_results(output_dir, datasets, runs, notes=(), extra=None):
    """
    results.json ({"dataset": the first of ``datasets``, "datasets", "rows" (each with its
    "dataset"), and ``extra``'s keys) and results.md (one table per dataset, the settings, then
    ``notes``); returns the markdown text.
    """
    rows = [r.row() for r in runs]
    with open(os.path.join(output_dir, "results.json"), "w") as f:
        json.dump({"dataset": datasets[0], "datasets": list(datasets), "rows": rows, **(extra or {})}, f, indent=2)

    buckets = [name for name, _, _ in MAX_IOU_BUCKETS]
    lines = [
        "# Pose2Seg vs Mask R-CNN",
        "",
        "Mask AP (COCO protocol, %); AP by MaxIoU bucket counts only the persons of the bucket "
        "(others ignored); time per image measured while evaluating, on the same images for every "
        "row; \"-\" train columns: weights loaded (or nothing learned), not trained in this run.",
    ]
    for dataset in datasets:
        lines += [
            "",
            f"## `{dataset}`",
            "",
            "| model | keypoints | AP | AP50 | AP75 | " + " | ".join(f"AP MaxIoU {b}" for b in buckets)
            + " | ms / image | train iters | train s |",
            "|---" * (8 + len(buckets)) + "|",
        ]
        for row in (r for r in rows if r["dataset"] == dataset):
            lines.append(
                f"| {row['label']} | {row['keypoints'] or '-'} | {_fmt(row['AP'])} | {_fmt(row['AP50'])} | "
                f"{_fmt(row['AP75'])} | " + " | ".join(_fmt(row["AP_by_max_iou"][b]) for b in buckets)
                + f" | {_fmt(row['ms_per_image'], 0)} | {row['train_iters'] or '-'} | "
                + f"{_fmt(row['train_seconds'] or None, 0)} |"
            )
    lines += ["", "Settings:", ""]
    seen, settings = set(), []
    for row in rows:
        if row["label"] not in seen:
            seen.add(row["label"])
            settings.append(row)
    keys = list(dict.fromkeys(k for row in settings for k in row["config"]))
    lines += ["| row | " + " | ".join(keys) + " |", "|---" * (1 + len(keys)) + "|"]
    for row in settings:
        lines.append(f"| {row['label']} | " + " | ".join(str(row["config"].get(k, "-")) for k in keys) + " |")
    for note in notes:
        lines += ["", note]
    text = "\n".join(lines) + "\n"
    with open(os.path.join(output_dir, "results.md"), "w") as f:
        f.write(text)
    return text


def write_figures(output_dir, dataset, runs, indices):
    """One grid PNG per image of ``dataset`` (input | ground truth | one panel per run of that
    dataset) and its AP-by-MaxIoU plot; the file names carry the dataset's name."""
    from detectron2.data.detection_utils import read_image
    from pycocotools import mask as mask_util

    runs = [r for r in runs if r.dataset == dataset]
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
        path = os.path.join(output_dir, f"grid_{dataset}_{index:04d}.png")
        cv2.imwrite(path, cv2.cvtColor(titled_grid(panels), cv2.COLOR_RGB2BGR))
        paths.append(path)
    plot_path = os.path.join(output_dir, f"ap_by_max_iou_{dataset}.png")
    plot_ap_by_max_iou([r.row() for r in runs], plot_path, title=f"Mask AP by occlusion on {dataset}")
    return paths, plot_path
