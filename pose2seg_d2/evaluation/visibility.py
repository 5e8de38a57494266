"""
What a bottom-up keypoint head's visibility output is worth (tools/visibility_flags.py): its
accuracy at the ground truth's labeled joints, and the ground-truth skeletons with its flags in
place of the annotations' (docs/method.md §7.1), to be segmented by Pose2Seg beside the true
flags and none.
"""
import torch
from detectron2.data import build_detection_test_loader

from ..data.dataset_mapper import Pose2SegDatasetMapper
from ..modeling.bottom_up.losses import values_at_joints
from ..modeling.bottom_up.targets import joint_pixels
from ..pose.keypoints import NUM_KEYPOINTS
from .keypoint_robustness import persons_with_keypoints, records_with_keypoints

__all__ = ["visibility_at_joints", "visibility_accuracy", "records_with_flags"]


def _ground_truth_keypoints(record):
    """(n, K, 3) float32 of the record's persons (:func:`persons_with_keypoints`), original
    image coordinates."""
    annotations = record["annotations"]
    rows = [annotations[i]["keypoints"] for i in persons_with_keypoints(record)]
    return torch.tensor(rows, dtype=torch.float32).reshape(-1, NUM_KEYPOINTS, 3)


@torch.no_grad()
def visibility_at_joints(model, cfg, records):
    """
    The predicted probability that each ground-truth joint is visible, read from the head's
    visibility logits at the pixel that holds the joint (:func:`joint_pixels`), whether or not
    a heatmap peak is there.

    Args:
        model (BottomUpKeypoints): in eval mode.
        cfg (CfgNode): its config (the test mapper's sizes).
        records (list[dict]): dataset dicts, keypoints in the original images' continuous
            coordinates.

    Returns:
        list[Tensor]: per record (n, K) float32 on the host, one row per
        :func:`persons_with_keypoints` annotation; NaN where the joint is not labeled or falls
        outside the map.
    """
    mapper = Pose2SegDatasetMapper(cfg, False)
    loader = build_detection_test_loader(records, mapper=mapper, num_workers=cfg.DATALOADER.NUM_WORKERS)
    records_by_id = {r["image_id"]: r for r in records}
    by_id = {}
    for inputs in loader:
        images = model.preprocess_image(inputs)
        logits = model.head(model.backbone(images.tensor)[model.in_feature].to(torch.float32))["visibility_logits"]
        size = logits.shape[-2:]
        for i, (x, (h, w)) in enumerate(zip(inputs, images.image_sizes)):
            keypoints = _ground_truth_keypoints(records_by_id[x["image_id"]])
            height, width = x["height"], x["width"]
            scaled = keypoints.clone()
            scaled[..., 0] *= w / width
            scaled[..., 1] *= h / height
            index, usable = joint_pixels(scaled.to(logits.device), size, model.stride)
            batch_index = torch.full((len(keypoints),), i, dtype=torch.long, device=logits.device)
            values = values_at_joints(logits[:, :, None], batch_index, index)[..., 0].sigmoid().cpu()
            by_id[x["image_id"]] = torch.where(usable.cpu(), values, torch.nan)
    return [by_id[r["image_id"]] for r in records]


def visibility_accuracy(records, probabilities, threshold=0.5):
    """
    Args:
        records (list[dict]): dataset dicts.
        probabilities (list[Tensor]): :func:`visibility_at_joints` of them.
        threshold (float): a joint is predicted visible at or above it.

    Returns:
        dict: over the labeled joints with a probability, ``joints``, ``accuracy`` (predicted
        visible == v = 2), ``covered_fraction`` (v = 1 of them), ``covered_recall`` and
        ``visible_recall`` (the accuracy on each kind; None without any).
    """
    truth = torch.cat([_ground_truth_keypoints(r)[..., 2].reshape(-1) for r in records])
    p = torch.cat([q.reshape(-1) for q in probabilities])
    counted = (truth > 0) & ~torch.isnan(p)
    visible, predicted = truth[counted] == 2, p[counted] >= threshold
    right = visible == predicted

    def rate(mask):
        return float(right[mask].float().mean()) if mask.any() else None

    return {
        "joints": int(counted.sum()),
        "accuracy": rate(torch.ones_like(right)),
        "covered_fraction": float((~visible).float().mean()) if counted.any() else None,
        "covered_recall": rate(~visible),
        "visible_recall": rate(visible),
    }


def records_with_flags(records, probabilities=None, threshold=0.5):
    """
    Copies of ``records`` whose labeled joints carry other visibility flags: v = 2 where the
    probability is at least ``threshold``, v = 1 below it; with ``probabilities`` None, v = 2
    for every labeled joint (no flags). Joints without a probability (NaN: outside the map)
    keep theirs; unlabeled joints stay unlabeled. The input records are not modified.
    """
    owners, keypoints = [], []
    for r, record in enumerate(records):
        kpt = _ground_truth_keypoints(record).to(torch.float64)
        labeled = kpt[..., 2] > 0
        if probabilities is None:
            kpt[..., 2] = torch.where(labeled, 2.0, kpt[..., 2])
        else:
            p = probabilities[r].to(torch.float64)
            flags = torch.where(p >= threshold, 2.0, 1.0)
            kpt[..., 2] = torch.where(labeled & ~torch.isnan(p), flags, kpt[..., 2])
        keypoints.append(kpt)
        owners += [(r, i) for i in persons_with_keypoints(record)]
    stacked = torch.cat(keypoints) if keypoints else torch.zeros(0, NUM_KEYPOINTS, 3, dtype=torch.float64)
    return records_with_keypoints(records, stacked, owners)
