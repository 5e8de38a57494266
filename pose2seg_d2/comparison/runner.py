"""
The comparison's runs: one model trained (or loaded) through :class:`Pose2SegTrainer`, then
evaluated on a test set by occlusion, timed on the same images, and its predictions on the
figure images kept.
"""
import json
import math
import os
import time
from dataclasses import dataclass, field

import torch
from detectron2.evaluation import DatasetEvaluator, DatasetEvaluators, inference_on_dataset

from ..engine import AtomicDetectionCheckpointer, Pose2SegTrainer, has_backbone, takes_keypoints
from ..evaluation import MAX_IOU_BUCKETS, OcclusionBucketEvaluator

__all__ = [
    "ModelRun",
    "TimedModel",
    "train_or_load",
    "evaluate_run",
    "keypoint_ap",
    "describe_config",
]

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
    if not has_backbone(cfg):
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
    if takes_keypoints(cfg):
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
    :class:`Pose2SegTrainer` (DATASETS.TEST left out: the caller evaluates). A model without a
    backbone (the keypoints-only reference) has nothing to learn, and is only built.

    Returns:
        (model in eval mode, iterations trained, seconds of training); 0 and 0.0 when loaded.
    """
    cfg = _without_test_sets(cfg)
    if weights or not has_backbone(cfg):
        model = Pose2SegTrainer.build_model(cfg)
        if weights:
            AtomicDetectionCheckpointer(model).load(weights)
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


class _KeptPredictions(DatasetEvaluator):
    """Keeps the model's instances (on the CPU) of the inputs whose ``file_name`` is asked for."""

    def __init__(self, file_names):
        self.file_names = set(file_names)
        self.instances = {}

    def reset(self):
        self.instances = {}

    def process(self, inputs, outputs):
        for x, out in zip(inputs, outputs):
            if x.get("file_name") in self.file_names:
                self.instances[x["file_name"]] = out["instances"].to("cpu")

    def evaluate(self):
        return None


def evaluate_run(run, model, cfg, dataset, figure_images=()):
    """
    Mask AP of ``model`` on ``dataset`` (overall and by MaxIoU bucket), its inference time per
    image over the same images, and its predictions on ``figure_images`` (indices into the
    dataset's records), all from one pass of :meth:`Pose2SegTrainer.build_test_loader`'s
    loader; fills ``run`` (with ``run.dataset``).
    """
    from detectron2.data import DatasetCatalog

    run.dataset = dataset
    evaluator = OcclusionBucketEvaluator(
        dataset, distributed=False, output_dir=os.path.join(cfg.OUTPUT_DIR, "eval", dataset)
    )
    records = DatasetCatalog.get(dataset)
    file_names = [records[i]["file_name"] for i in figure_images]
    kept = _KeptPredictions(file_names)
    # in eval mode: inference_on_dataset restores the wrapper's mode, and with it the model's
    timed = TimedModel(model).eval()
    loader = Pose2SegTrainer.build_test_loader(cfg, dataset)
    run.metrics = inference_on_dataset(timed, loader, DatasetEvaluators([evaluator, kept]))
    run.ms_per_image = timed.ms_per_image
    run.predictions = [kept.instances[f] for f in file_names]
    return run


def keypoint_ap(model, cfg, dataset):
    """COCO keypoint AP (OKS, %) of a Detectron2 keypoint model on ``dataset`` (None if it
    cannot be computed)."""
    from detectron2.evaluation import COCOEvaluator

    loader = Pose2SegTrainer.build_test_loader(cfg, dataset)
    evaluator = COCOEvaluator(
        dataset, tasks=("keypoints",), distributed=False, output_dir=os.path.join(cfg.OUTPUT_DIR, "eval", dataset)
    )
    metrics = inference_on_dataset(model, loader, evaluator)
    return _finite_or_none(metrics.get("keypoints", {}).get("AP"))
