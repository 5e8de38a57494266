"""A person annotation's area, the ``a`` by which COCO's OKS scales keypoint distances."""
import numpy as np
import pycocotools.mask as mask_util
from detectron2.structures import BoxMode

__all__ = ["annotation_area", "annotation_box", "record_areas"]


def annotation_box(annotation):
    """The annotation's ``bbox`` as XYWH (absolute), whatever its ``bbox_mode``."""
    mode = annotation.get("bbox_mode", BoxMode.XYWH_ABS)
    return [float(v) for v in BoxMode.convert(list(annotation["bbox"]), mode, BoxMode.XYWH_ABS)]


def annotation_area(annotation, height, width):
    """
    Args:
        annotation (dict): a dataset dict annotation.
        height, width (int): its image's size.

    Returns:
        float: its ``area`` when it has one (a COCO file's, which Detectron2's loader leaves
        out), else the pixel count of its ``segmentation`` (polygons merged, or an RLE, as
        COCO counts it), else its ``bbox``'s width x height.
    """
    if annotation.get("area") is not None:
        return float(annotation["area"])
    segm = annotation.get("segmentation")
    if isinstance(segm, np.ndarray):
        return float(np.count_nonzero(segm))
    if isinstance(segm, list) and segm:
        return float(mask_util.area(mask_util.merge(mask_util.frPyObjects(segm, height, width))))
    if isinstance(segm, dict):
        rle = mask_util.frPyObjects(segm, *segm["size"]) if isinstance(segm["counts"], list) else dict(segm)
        if isinstance(rle["counts"], str):
            rle["counts"] = rle["counts"].encode("ascii")
        return float(mask_util.area(rle))
    _, _, w, h = annotation_box(annotation)
    return w * h


def record_areas(record, annotations=None):
    """(n,) float64 areas of ``annotations`` (default: the record's) of one dataset dict."""
    annotations = record.get("annotations", []) if annotations is None else annotations
    return np.array([annotation_area(a, record["height"], record["width"]) for a in annotations], np.float64)
