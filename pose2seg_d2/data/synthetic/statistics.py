"""Statistics of a generated split: persons, MaxIoU levels, covered keypoints, outfits."""
import numpy as np

from ..max_iou import MAX_IOU_BUCKETS, in_max_iou_bucket

__all__ = ["dataset_statistics", "format_statistics"]


def dataset_statistics(coco):
    """
    Args:
        coco (dict): a COCO-style person dataset with ``max_iou`` on every annotation.

    Returns:
        dict: ``images``, ``persons``, ``persons_per_image``, ``mean_max_iou``,
        ``share_max_iou_ge_0.5`` (OCHuman's heavy occlusion), ``persons_by_max_iou`` (counts
        in the evaluator's buckets, :data:`~pose2seg_d2.data.max_iou.MAX_IOU_BUCKETS`),
        ``share_keypoint_covered`` (persons with a keypoint covered by another person, v = 1)
        and, where annotations carry ``figure``, ``share_outfit`` (share of persons per
        outfit) and ``share_bag_or_hat``.
    """
    annos = coco["annotations"]
    ious = np.array([a["max_iou"] for a in annos], dtype=np.float64)
    covered = [any(v == 1 for v in a["keypoints"][2::3]) for a in annos]
    n = max(len(annos), 1)
    stats = {
        "images": len(coco["images"]),
        "persons": len(annos),
        "persons_per_image": len(annos) / max(len(coco["images"]), 1),
        "mean_max_iou": float(ious.mean()) if len(ious) else 0.0,
        "share_max_iou_ge_0.5": float((ious >= 0.5).sum() / n),
        "persons_by_max_iou": {
            name: int(in_max_iou_bucket(ious, low, high).sum()) for name, low, high in MAX_IOU_BUCKETS
        },
        "share_keypoint_covered": float(sum(covered) / n),
    }
    figures = [a["figure"] for a in annos if "figure" in a]
    if figures:
        outfits = [f["outfit"] for f in figures]
        stats["share_outfit"] = {o: outfits.count(o) / len(figures) for o in sorted(set(outfits))}
        stats["share_bag_or_hat"] = sum(f["bag"] != "none" or f["hat"] for f in figures) / len(figures)
    return stats


def format_statistics(split, stats):
    """One line of :func:`dataset_statistics` ``stats`` of ``split``, for the console."""
    return (
        f"synthetic_occluded {split}: {stats['images']} images, {stats['persons']} persons "
        f"({stats['persons_per_image']:.2f}/image), mean MaxIoU {stats['mean_max_iou']:.3f}, "
        f"occluded (MaxIoU >= 0.5) {100 * stats['share_max_iou_ge_0.5']:.1f}%, persons by MaxIoU "
        + " / ".join(f"{k}: {v}" for k, v in stats["persons_by_max_iou"].items())
        + f", with a covered keypoint {100 * stats['share_keypoint_covered']:.1f}%"
    )
