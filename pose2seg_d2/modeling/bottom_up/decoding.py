"""
Decoding the bottom-up head's maps into persons (docs/method.md §7): heatmap peaks by 3x3
non-maximum suppression, then joint types in a fixed order, each type's peaks matched to the
persons found so far by their tags (minimum-cost matching), the unmatched ones starting persons.

Coordinates: feature pixel j of a stride-s map has its center at integer j and covers input
[s j, s (j + 1)); outputs are in input-image continuous coordinates (pixel i spans [i, i + 1]),
so a peak at feature pixel j is at input s (j + 0.5) (docs/method.md §9).
"""
import math

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

__all__ = [
    "COCO_JOINT_ORDER",
    "default_joint_order",
    "heatmap_peaks",
    "quarter_pixel_offsets",
    "group_joints",
    "decode_persons",
]

# the paper's grouping order for the 17 COCO joints: nose, eyes, ears, shoulders, hips, then
# elbows, wrists, knees, ankles (the head and torso are found most reliably)
COCO_JOINT_ORDER = (0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13, 14, 15, 16)

# a cost no real match reaches (tag distances are compared with a threshold near 1)
_NO_MATCH = 1e9


def default_joint_order(num_keypoints):
    """:data:`COCO_JOINT_ORDER` for 17 joints, the index order otherwise."""
    return COCO_JOINT_ORDER if num_keypoints == len(COCO_JOINT_ORDER) else tuple(range(num_keypoints))


def _valid_pixels(valid_sizes, size, device):
    """(B, 1, H, W) bool: True inside each image's (h, w) part of the map."""
    h, w = size
    rows = torch.arange(h, device=device)[None, :, None] < valid_sizes[:, 0, None, None]
    cols = torch.arange(w, device=device)[None, None, :] < valid_sizes[:, 1, None, None]
    return (rows & cols)[:, None]


def heatmap_peaks(heatmaps, valid_sizes, max_peaks):
    """
    The local maxima of every heatmap (pixels equal to their 3x3 max-pool) in each image's
    valid part of the map, strongest first.

    Args:
        heatmaps (Tensor): (B, K, H, W).
        valid_sizes (Tensor): (B, 2) long, (h, w) of each image's valid part, in feature pixels
            (what lies beyond is padding and holds no peak).
        max_peaks (int): M, peaks kept per map.

    Returns:
        tuple: ``values`` (B, K, M') float32, -inf where a map has fewer peaks; ``index``
        (B, K, M') long, y * W + x of each peak; ``masked`` (B, K, H, W), the heatmaps with -inf
        outside the valid parts; M' = min(M, H * W).
    """
    b, k, h, w = heatmaps.shape
    valid = _valid_pixels(valid_sizes, (h, w), heatmaps.device)
    masked = torch.where(valid, heatmaps.to(torch.float32), -math.inf)
    pooled = F.max_pool2d(masked, 3, stride=1, padding=1)  # pads with -inf
    peaks = torch.where((masked == pooled) & valid, masked, -math.inf)
    values, index = peaks.flatten(2).topk(min(max_peaks, h * w), dim=2)
    return values, index, masked


def quarter_pixel_offsets(masked, index):
    """
    Associative Embedding's refinement: a quarter pixel toward the higher of a peak's two
    neighbors, in x and in y.

    Args:
        masked (Tensor): (B, K, H, W), -inf outside the valid map (:func:`heatmap_peaks`).
        index (Tensor): (B, K, M) long, y * W + x of the peaks.

    Returns:
        Tensor (B, K, M, 2) of (dx, dy) in {-0.25, 0, 0.25}; 0 where the two neighbors are equal
        or one is outside the valid map.
    """
    w = masked.shape[-1]
    padded = F.pad(masked, (1, 1, 1, 1), value=-math.inf).flatten(2)
    stride = w + 2
    y, x = index // w + 1, index % w + 1  # in the padded map

    def at(dy, dx):
        return padded.gather(2, (y + dy) * stride + (x + dx))

    offsets = []
    for low, high in ((at(0, -1), at(0, 1)), (at(-1, 0), at(1, 0))):
        step = 0.25 * torch.sign(high - low)
        offsets.append(torch.where(torch.isfinite(low) & torch.isfinite(high), step, 0.0))
    return torch.stack(offsets, dim=-1)


def group_joints(values, tags, joint_order, detection_threshold, tag_threshold, max_persons):
    """
    Group one image's peaks into persons by their tags.

    Joint types are taken in ``joint_order``. A peak of the type counts when its value is at
    least ``detection_threshold``. The counting peaks are matched to the persons found so far
    by minimum total cost (Hungarian), the cost of a peak and a person being the distance of
    the peak's tag to the person's mean tag, minus the peak's value (so that, of several peaks
    close to a person, the strongest joins it). A match joins the person when that distance is
    below ``tag_threshold``; every other counting peak starts a person, the strongest first,
    while there are fewer than ``max_persons``.

    Args:
        values (ndarray): (K, M) the peaks' heatmap values (-inf: no peak).
        tags (ndarray): (K, M, D) their tags.
        joint_order (sequence[int]): every joint type once.
        detection_threshold (float), tag_threshold (float), max_persons (int): see above.

    Returns:
        ndarray (P, K) int64: the peak (index into M) each person has of each joint type, -1
        where it has none; persons in the order they were started.
    """
    num_types, _ = values.shape
    dim = tags.shape[-1]
    assignment = np.full((max_persons, num_types), -1, dtype=np.int64)
    tag_sums = np.zeros((max_persons, dim), dtype=np.float64)
    counts = np.zeros(max_persons, dtype=np.float64)
    found = 0
    for k in joint_order:
        candidates = np.flatnonzero(values[k] >= detection_threshold)
        if len(candidates) == 0:
            continue
        candidate_tags = tags[k, candidates].astype(np.float64)
        joined = np.zeros(len(candidates), dtype=bool)
        if found:
            reference = tag_sums[:found] / counts[:found, None]
            distance = np.linalg.norm(candidate_tags[:, None] - reference[None], axis=-1)  # (c, persons)
            distance = np.nan_to_num(distance, nan=_NO_MATCH, posinf=_NO_MATCH)
            cost = distance - values[k, candidates][:, None]
            rows, cols = linear_sum_assignment(cost)
            close = distance[rows, cols] < tag_threshold
            rows, cols = rows[close], cols[close]
            assignment[cols, k] = candidates[rows]
            tag_sums[cols] += candidate_tags[rows]
            counts[cols] += 1
            joined[rows] = True
        new = np.flatnonzero(~joined)[: max_persons - found]  # candidates are strongest first
        assignment[found : found + len(new), k] = candidates[new]
        tag_sums[found : found + len(new)] = candidate_tags[new]
        counts[found : found + len(new)] = 1
        found += len(new)
    return assignment[:found]


def decode_persons(
    outputs, image_sizes, stride, *, max_persons, detection_threshold, tag_threshold, joint_order, refine=True
):
    """
    The persons of every image of a batch, from the head's maps.

    Args:
        outputs (dict): the head's ``heatmaps`` (B, K, H, W), ``tags`` (B, K, D, H, W) and
            ``visibility_logits`` (B, K, H, W).
        image_sizes (list[tuple[int, int]]): (height, width) of each input image; its valid
            part of the map is ceil(height / stride) x ceil(width / stride).
        stride (int): the map's stride.
        max_persons (int): peaks kept per joint type and persons per image.
        detection_threshold (float): > 0; the least heatmap value of a joint.
        tag_threshold (float), joint_order (sequence[int]): see :func:`group_joints`.
        refine (bool): apply :func:`quarter_pixel_offsets`.

    Returns:
        list[dict]: per image, on the host, persons sorted by score (highest first, ties in the
        order they were found): ``keypoints`` (P, K, 3) float32 of (x, y, score) in input-image
        continuous coordinates, the score being the peak's heatmap value, and (0, 0, 0) for a
        joint not found; ``visibility`` (P, K) float32, the predicted probability that the joint
        is visible (0 where not found); ``scores`` (P,) float32, the mean of the K joint scores
        (a joint not found counts 0).
    """
    heatmaps, tags = outputs["heatmaps"], outputs["tags"]
    b, k, h, w = heatmaps.shape
    valid_sizes = torch.tensor(
        [[math.ceil(ih / stride), math.ceil(iw / stride)] for ih, iw in image_sizes], device=heatmaps.device
    ).reshape(-1, 2)
    values, index, masked = heatmap_peaks(heatmaps, valid_sizes, max_persons)
    m = values.shape[-1]
    xy = torch.stack([index % w, index // w], dim=-1).to(torch.float32)
    if refine:
        xy = xy + quarter_pixel_offsets(masked, index)
    dim = tags.shape[2]
    peak_tags = tags.flatten(3).gather(3, index[:, :, None, :].expand(b, k, dim, m)).permute(0, 1, 3, 2)
    visible = outputs["visibility_logits"].flatten(2).gather(2, index).to(torch.float32).sigmoid()
    # one transfer: value, x, y, visibility, tag per peak
    packed = torch.cat([values[..., None], xy, visible[..., None], peak_tags.to(torch.float32)], dim=-1).cpu().numpy()

    results = []
    joint_types = np.arange(k)[None, :]
    for i, (ih, iw) in enumerate(image_sizes):
        assignment = group_joints(
            packed[i, ..., 0], packed[i, ..., 4:], joint_order, detection_threshold, tag_threshold, max_persons
        )
        found = assignment >= 0
        chosen = packed[i][joint_types, np.where(found, assignment, 0)]  # (P, K, 4 + D)
        keypoints = np.zeros((len(assignment), k, 3), dtype=np.float32)
        keypoints[..., 0] = np.clip((chosen[..., 1] + 0.5) * stride, 0, float(iw))
        keypoints[..., 1] = np.clip((chosen[..., 2] + 0.5) * stride, 0, float(ih))
        keypoints[..., 2] = chosen[..., 0]
        keypoints[~found] = 0.0
        visibility = np.where(found, chosen[..., 3], 0.0).astype(np.float32)
        scores = (keypoints[..., 2].sum(axis=1) / k).astype(np.float32)
        order = np.argsort(-scores, kind="stable")
        results.append(
            {
                "keypoints": torch.from_numpy(keypoints[order]),
                "visibility": torch.from_numpy(visibility[order]),
                "scores": torch.from_numpy(scores[order]),
            }
        )
    return results
