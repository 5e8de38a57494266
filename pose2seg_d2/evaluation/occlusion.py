"""Mask AP by occlusion: COCO evaluation restricted to persons in a MaxIoU range."""
import contextlib
import copy
import io
import itertools
import math
from collections import defaultdict

import numpy as np
from detectron2.evaluation import COCOEvaluator
from pycocotools.cocoeval import COCOeval

from ..data.max_iou import MAX_IOU_BUCKETS, max_iou

__all__ = [
    "MAX_IOU_BUCKETS",
    "MaxIoURangeCOCOeval",
    "OcclusionBucketEvaluator",
    "ensure_gt_max_iou",
    "evaluate_by_max_iou",
]

def _in_range(value, low, high):
    return low <= value < high or (high >= 1.0 and value == high)


class MaxIoURangeCOCOeval(COCOeval):
    """
    COCOeval that ignores every ground-truth person whose ``max_iou`` is outside
    [low, high): a detection matched to an ignored person counts neither as a true nor a
    false positive; an unmatched detection is a false positive.
    """

    def __init__(self, coco_gt, coco_dt, iou_type, max_iou_range):
        super().__init__(coco_gt, coco_dt, iou_type)
        self.max_iou_range = max_iou_range

    def _prepare(self):
        super()._prepare()  # sets every gt's "ignore" to its iscrowd flag
        low, high = self.max_iou_range
        for gts in self._gts.values():
            for gt in gts:
                if not _in_range(gt["max_iou"], low, high):
                    gt["ignore"] = 1


def ensure_gt_max_iou(coco_gt):
    """Give every annotation of a pycocotools COCO object a ``max_iou`` (from the boxes when absent)."""
    by_image = defaultdict(list)
    for ann in coco_gt.dataset["annotations"]:
        by_image[ann["image_id"]].append(ann)
    for anns in by_image.values():
        if all("max_iou" in a for a in anns):
            continue
        persons = [a for a in anns if not a.get("iscrowd", 0)]
        values = max_iou(np.array([a["bbox"] for a in persons], dtype=np.float64).reshape(-1, 4), "xywh")
        for a, v in zip(persons, values):
            a.setdefault("max_iou", float(v))
        for a in anns:
            a.setdefault("max_iou", 0.0)


def _ap_triplet(coco_eval):
    ap, ap50, ap75 = (float(x) for x in coco_eval.stats[:3])
    # COCOeval reports -1 where no ground truth counts
    return {k: (v * 100 if v >= 0 else math.nan) for k, v in (("AP", ap), ("AP50", ap50), ("AP75", ap75))}


def evaluate_by_max_iou(coco_gt, coco_results, iou_type="segm", buckets=MAX_IOU_BUCKETS, img_ids=None):
    """
    Args:
        coco_gt (COCO): ground truth; annotations without ``max_iou`` get it from their boxes.
        coco_results (list[dict]): COCO-format results (category ids of the dataset).

    Returns:
        dict: ``{bucket name: {"AP", "AP50", "AP75"}}`` in percent, NaN where the bucket holds no
        person (or there is no result).
    """
    ensure_gt_max_iou(coco_gt)
    out = {}
    for name, low, high in buckets:
        in_bucket = [a for a in coco_gt.dataset["annotations"] if _in_range(a["max_iou"], low, high)]
        if not in_bucket or not coco_results:
            out[name] = {"AP": math.nan, "AP50": math.nan, "AP75": math.nan}
            continue
        results = copy.deepcopy(coco_results)
        if iou_type == "segm":
            for r in results:
                r.pop("bbox", None)  # mask area, as Detectron2 does
        coco_eval = MaxIoURangeCOCOeval(coco_gt, coco_gt.loadRes(results), iou_type, (low, high))
        if img_ids is not None:
            coco_eval.params.imgIds = img_ids
        with contextlib.redirect_stdout(io.StringIO()):  # COCOeval prints its whole table
            coco_eval.evaluate()
            coco_eval.accumulate()
            coco_eval.summarize()
        out[name] = _ap_triplet(coco_eval)
    return out


class OcclusionBucketEvaluator(COCOEvaluator):
    """
    COCOEvaluator on the segm task that also reports mask AP, AP50 and AP75 for the persons of
    each MaxIoU bucket, as ``results["segm_by_max_iou"]["AP_0.00-0.50"]`` and so on (NaN for an
    empty bucket). Works for any model that outputs ``pred_masks``.
    """

    def __init__(self, dataset_name, distributed=True, output_dir=None, buckets=MAX_IOU_BUCKETS):
        super().__init__(dataset_name, tasks=("segm",), distributed=distributed, output_dir=output_dir)
        self._buckets = buckets

    def _eval_predictions(self, predictions, img_ids=None):
        results = copy.deepcopy(list(itertools.chain(*[x["instances"] for x in predictions])))
        if hasattr(self._metadata, "thing_dataset_id_to_contiguous_id"):
            to_dataset = {v: k for k, v in self._metadata.thing_dataset_id_to_contiguous_id.items()}
            for r in results:
                r["category_id"] = to_dataset[r["category_id"]]
        super()._eval_predictions(predictions, img_ids)
        if not self._do_evaluation:
            return
        by_bucket = evaluate_by_max_iou(self._coco_api, results, "segm", self._buckets, img_ids)
        self._results["segm_by_max_iou"] = {
            f"{metric}_{bucket}": value for bucket, aps in by_bucket.items() for metric, value in aps.items()
        }
        self._logger.info(
            "Mask AP by MaxIoU bucket: "
            + ", ".join(f"{b}: {aps['AP']:.2f}" for b, aps in by_bucket.items())
        )
