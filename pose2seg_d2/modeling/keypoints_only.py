"""
The keypoints-only reference: each person's skeleton drawn as a filled figure, no image, no
learning. It tells how much of a mask the keypoints alone give, so that a segmenter's score
can be read against it (SPEC's Pose2Seg renders skeletons into its input; this draws them as
the output).
"""
import torch
from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY
from detectron2.structures import Boxes, Instances
from torch import nn

from ..layers import boxes_from_masks
from ..pose.keypoints import COCO_PERSON_KEYPOINT_NAMES
from ..pose.transforms import labeled_mask
from .keypoint_sources import build_keypoint_source

__all__ = ["KeypointsOnlyMasks", "figure_distances", "figure_masks", "FIGURE_PARTS"]

_K = {name: i for i, name in enumerate(COCO_PERSON_KEYPOINT_NAMES)}
# the segments of each drawn part (keypoint index pairs); the torso is filled by its four sides
# and two diagonals
FIGURE_PARTS = {
    "arms": [(_K[f"{s}_{a}"], _K[f"{s}_{b}"]) for s in ("left", "right") for a, b in (("shoulder", "elbow"), ("elbow", "wrist"))],
    "legs_and_torso": [(_K[f"{s}_{a}"], _K[f"{s}_{b}"]) for s in ("left", "right") for a, b in (("hip", "knee"), ("knee", "ankle"))]
    + [
        (_K["left_shoulder"], _K["right_shoulder"]),
        (_K["left_hip"], _K["right_hip"]),
        (_K["left_shoulder"], _K["left_hip"]),
        (_K["right_shoulder"], _K["right_hip"]),
        (_K["left_shoulder"], _K["right_hip"]),
        (_K["right_shoulder"], _K["left_hip"]),
    ],
}
_FACE = [_K[n] for n in ("nose", "left_eye", "right_eye", "left_ear", "right_ear")]
_SHOULDERS = [_K["left_shoulder"], _K["right_shoulder"]]
_HIPS = [_K["left_hip"], _K["right_hip"]]


def person_scales(keypoints):
    """
    Each person's size for the figure's widths: the torso length (mid-shoulders to mid-hips)
    where both pairs have a labeled keypoint, else a third of the labeled keypoints' box's longer
    side (a standing figure's torso is about that); at least 1 pixel.

    Args:
        keypoints (Tensor): (N, 17, 3); v > 0 means labeled (:func:`labeled_mask`).

    Returns:
        Tensor (N,) float32.
    """
    labeled = labeled_mask(keypoints)
    xy = torch.where(labeled[..., None], keypoints[..., :2], torch.zeros_like(keypoints[..., :2])).float()

    def center(indices):
        w = labeled[:, indices].float()
        return (xy[:, indices] * w[..., None]).sum(1) / w.sum(1, keepdim=True).clamp(min=1), w.sum(1) > 0

    (shoulders, has_s), (hips, has_h) = center(_SHOULDERS), center(_HIPS)
    torso = torch.linalg.vector_norm(shoulders - hips, dim=-1)
    big = torch.finfo(torch.float32).max
    low = torch.where(labeled[..., None], xy, torch.full_like(xy, big)).amin(1)
    high = torch.where(labeled[..., None], xy, torch.full_like(xy, -big)).amax(1)
    box_side = torch.where(labeled.any(1), (high - low).amax(1), torch.zeros_like(torso))
    return torch.where(has_s & has_h & (torso > 0), torso, box_side / 3).clamp(min=1.0)


def _segment_distances(xs, ys, a, b):
    """
    Squared distances of the pixel centers (xs, ys) to segments a -> b.

    Args:
        xs (Tensor): (W,) x of the pixel centers; ys (Tensor): (H,).
        a, b (Tensor): (..., 2) segment ends (a segment of length 0 is a point).

    Returns:
        Tensor (..., H, W).
    """
    ab = b - a
    length2 = (ab * ab).sum(-1).clamp(min=1e-12)[..., None, None]
    dx0 = xs - a[..., 0, None]  # (..., W): pixel minus start
    dy0 = ys - a[..., 1, None]  # (..., H)
    t = (dx0[..., None, :] * ab[..., 0, None, None] + dy0[..., :, None] * ab[..., 1, None, None]) / length2
    t = t.clamp(0, 1)
    dx = dx0[..., None, :] - t * ab[..., 0, None, None]
    dy = dy0[..., :, None] - t * ab[..., 1, None, None]
    return dx * dx + dy * dy


def figure_distances(keypoints, image_size):
    """
    For every pixel, its distance to each person's drawn parts, in units of the person's scale.

    Args:
        keypoints (Tensor): (N, 17, 3) in continuous coordinates of the image (pixel (x, y)
            spans [x, x + 1) x [y, y + 1), its center at (x + 0.5, y + 0.5)).
        image_size (tuple[int, int]): (H, W).

    Returns:
        Tensor (N, 3, H, W) float32: distances of the pixel centers to the nearest arm segment,
        to the nearest leg or torso segment (both labeled ends needed) and to the head center
        (the mean of the labeled face keypoints), each divided by :func:`person_scales`; +inf
        where the person has no such part.
    """
    h, w = int(image_size[0]), int(image_size[1])
    num = keypoints.shape[0]
    out = torch.full((num, 3, h, w), float("inf"), device=keypoints.device)
    if num == 0 or h == 0 or w == 0:
        return out
    labeled = labeled_mask(keypoints)
    xy = torch.where(labeled[..., None], keypoints[..., :2], torch.zeros_like(keypoints[..., :2])).float()
    scales = person_scales(keypoints)[:, None, None]
    xs = torch.arange(w, device=keypoints.device, dtype=torch.float32) + 0.5
    ys = torch.arange(h, device=keypoints.device, dtype=torch.float32) + 0.5
    inf = torch.tensor(float("inf"), device=keypoints.device)
    for channel, part in enumerate(("arms", "legs_and_torso")):
        pairs = torch.tensor(FIGURE_PARTS[part], device=keypoints.device)
        present = labeled[:, pairs[:, 0]] & labeled[:, pairs[:, 1]]  # (N, S)
        d2 = _segment_distances(xs, ys, xy[:, pairs[:, 0]], xy[:, pairs[:, 1]])  # (N, S, H, W)
        d2 = torch.where(present[..., None, None], d2, inf).amin(dim=1)
        out[:, channel] = d2.sqrt() / scales
    face = labeled[:, _FACE].float()
    head = (xy[:, _FACE] * face[..., None]).sum(1) / face.sum(1, keepdim=True).clamp(min=1)  # (N, 2)
    d2 = (xs - head[:, 0, None])[:, None, :] ** 2 + (ys - head[:, 1, None])[:, :, None] ** 2
    out[:, 2] = torch.where(face.sum(1)[:, None, None] > 0, d2.sqrt() / scales, inf)
    return out


def figure_masks(keypoints, image_size, arm_width, leg_width, head_radius):
    """
    The filled figures: (N, H, W) bool, pixels within ``arm_width`` of an arm, ``leg_width`` of
    a leg or torso segment, or ``head_radius`` of the head center (all in units of the person's
    scale; see :func:`figure_distances`).
    """
    d = figure_distances(keypoints, image_size)
    limits = torch.tensor([arm_width, leg_width, head_radius], device=d.device)
    return (d <= limits[:, None, None]).any(dim=1)


@META_ARCH_REGISTRY.register()
class KeypointsOnlyMasks(nn.Module):
    """
    Masks drawn from keypoints alone (see :func:`figure_masks`): no image, no parameters to
    learn. Persons come from the keypoint source (MODEL.POSE2SEG.KEYPOINT_SOURCE), as for
    Pose2Seg; every mask scores the person's keypoint score (1 for "gt"). The widths are
    MODEL.KEYPOINTS_ONLY.*; ``tools/compare.py`` chooses them on a validation split.
    """

    input_kind = "keypoints"  # persons' keypoints as input (Pose2SegTrainer's dataset mapper)
    has_backbone = False  # no image features, nothing to learn

    @configurable
    def __init__(self, *, keypoint_source, arm_width, leg_width, head_radius):
        super().__init__()
        self.keypoint_source = keypoint_source
        self.arm_width, self.leg_width, self.head_radius = arm_width, leg_width, head_radius
        # the model holds no weights; this buffer tells the device
        self.register_buffer("_device_tracker", torch.zeros(0), False)

    @classmethod
    def from_config(cls, cfg):
        k = cfg.MODEL.KEYPOINTS_ONLY
        return {
            "keypoint_source": build_keypoint_source(cfg),
            "arm_width": k.ARM_WIDTH,
            "leg_width": k.LEG_WIDTH,
            "head_radius": k.HEAD_RADIUS,
        }

    @property
    def device(self):
        return self._device_tracker.device

    def forward(self, batched_inputs):
        if self.training:
            raise RuntimeError("KeypointsOnlyMasks has nothing to learn: evaluate it (train_net.py --eval-only)")
        sizes = [tuple(x["image"].shape[-2:]) for x in batched_inputs]
        sources = self.keypoint_source(batched_inputs, sizes, self.device)
        results = []
        for x, (h, w), (keypoints, scores) in zip(batched_inputs, sizes, sources):
            out_h, out_w = x.get("height", h), x.get("width", w)
            keypoints = keypoints.to(self.device, torch.float32).clone()
            keypoints[..., 0] *= out_w / w
            keypoints[..., 1] *= out_h / h
            masks = figure_masks(keypoints, (out_h, out_w), self.arm_width, self.leg_width, self.head_radius)
            result = Instances((out_h, out_w))
            result.pred_masks = masks
            result.pred_boxes = Boxes(boxes_from_masks(masks))
            result.scores = scores.to(self.device, torch.float32)
            result.pred_classes = torch.zeros(len(masks), dtype=torch.long, device=self.device)
            result.pred_keypoints = keypoints
            results.append({"instances": result})
        return results
