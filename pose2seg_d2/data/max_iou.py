"""
MaxIoU: how heavily a person overlaps the others of its image (OCHuman's occlusion measure).

The MaxIoU of a person is the largest box IoU between its box and the box of any other
person of the same image; 0 for a person alone in its image.
"""
import numpy as np

from detectron2.structures import BoxMode

__all__ = ["MAX_IOU_BUCKETS", "in_max_iou_bucket", "pairwise_box_iou", "max_iou", "add_max_iou"]

# (name, low, high): a person is in the bucket when low <= max_iou < high; the last bucket
# also holds max_iou == 1.
MAX_IOU_BUCKETS = (("0.00-0.50", 0.0, 0.5), ("0.50-0.75", 0.5, 0.75), ("0.75-1.00", 0.75, 1.0))


def in_max_iou_bucket(values, low, high):
    """
    Args:
        values (array-like): (N,) MaxIoU values.
        low, high (float): a bucket's edges (see :data:`MAX_IOU_BUCKETS`).

    Returns:
        ndarray: (N,) bool, ``low <= value < high``, or ``value == high`` when ``high`` is 1.
    """
    values = np.asarray(values, dtype=np.float64)
    return ((values >= low) & (values < high)) | ((high >= 1.0) & (values == high))


def pairwise_box_iou(boxes, mode="xywh"):
    """
    Args:
        boxes (array-like): (N, 4) boxes as [x, y, w, h] (``mode="xywh"``) or
            [x1, y1, x2, y2] (``mode="xyxy"``), continuous coordinates.
        mode (str): "xywh" or "xyxy".

    Returns:
        ndarray: (N, N) float64 IoU; 0 where the union is empty.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if mode == "xywh":
        x1, y1 = boxes[:, 0], boxes[:, 1]
        x2, y2 = x1 + boxes[:, 2], y1 + boxes[:, 3]
    elif mode == "xyxy":
        x1, y1, x2, y2 = boxes.T
    else:
        raise ValueError(f"mode must be 'xywh' or 'xyxy', got {mode!r}")
    area = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    iw = np.clip(np.minimum(x2[:, None], x2[None]) - np.maximum(x1[:, None], x1[None]), 0, None)
    ih = np.clip(np.minimum(y2[:, None], y2[None]) - np.maximum(y1[:, None], y1[None]), 0, None)
    inter = iw * ih
    union = area[:, None] + area[None] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
    return iou


def max_iou(boxes, mode="xywh"):
    """
    Args:
        boxes (array-like): (N, 4) boxes of the persons of one image (see
            :func:`pairwise_box_iou`).

    Returns:
        ndarray: (N,) float64, each person's largest IoU with another person; 0 when N < 2.
    """
    iou = pairwise_box_iou(boxes, mode)
    if iou.shape[0] < 2:
        return np.zeros(iou.shape[0])
    np.fill_diagonal(iou, -1.0)
    return iou.max(axis=1).clip(min=0.0)


def add_max_iou(dataset_dicts, overwrite=False):
    """
    Give every annotation of Detectron2 dataset dicts a ``max_iou`` (in place).

    An annotation that already has ``max_iou`` keeps it unless ``overwrite``. MaxIoU is
    computed among the non-crowd annotations of each image from their ``bbox`` (any
    ``bbox_mode``, XYWH_ABS when absent); crowd annotations get 0.

    Returns:
        list[dict]: ``dataset_dicts``.
    """
    for record in dataset_dicts:
        annos = record.get("annotations", [])
        if not overwrite and all("max_iou" in a for a in annos):
            continue
        persons = [a for a in annos if not a.get("iscrowd", 0)]
        boxes = [
            BoxMode.convert(list(a["bbox"]), a.get("bbox_mode", BoxMode.XYWH_ABS), BoxMode.XYXY_ABS)
            for a in persons
        ]
        values = max_iou(np.asarray(boxes, dtype=np.float64).reshape(-1, 4), mode="xyxy")
        for anno, value in zip(persons, values):
            if overwrite or "max_iou" not in anno:
                anno["max_iou"] = float(value)
        for anno in annos:
            if anno.get("iscrowd", 0) and (overwrite or "max_iou" not in anno):
                anno["max_iou"] = 0.0
    return dataset_dicts
