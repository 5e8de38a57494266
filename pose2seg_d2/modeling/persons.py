"""The persons of a batch of images, as Pose2Seg's geometry takes them: one tensor a field."""
from dataclasses import dataclass
from typing import List

import torch

from ..pose import NUM_KEYPOINTS
from ..utils import cat_to_device, to_device

__all__ = ["Persons", "gather_persons"]


@dataclass
class Persons:
    """All persons of a batch of images, on the model's device, in image order."""

    keypoints: torch.Tensor  # (N, 17, 3) float32, input-image continuous coordinates
    scores: torch.Tensor  # (N,) float32 person scores
    batch_index: torch.Tensor  # (N,) long
    # (N, 3, 3) float64: input-image continuous coordinates -> feature-map pixels
    feature_from_input: torch.Tensor
    # (N, 2) float64 (height, width) of the feature map's part the aligner fits into
    feature_sizes: torch.Tensor
    input_sizes: torch.Tensor  # (N, 2) float64 input image (height, width)
    output_sizes: torch.Tensor  # (N, 2) float64 output image (height, width)
    counts: List[int]  # persons per image, on the host


def gather_persons(keypoints_per_image, scores_per_image, feature_frames, image_sizes, output_sizes, device):
    """
    The persons of B images as one :class:`Persons` on ``device``.

    The per-person bookkeeping (image index, feature frame, input and output sizes) is made on
    the host from the numbers of persons, which the host knows from the inputs, and copied to
    the device with the keypoints without a synchronization (:func:`cat_to_device`).

    Args:
        keypoints_per_image (list[Tensor]): per image, (n, 17, 3) in its continuous coordinates.
        scores_per_image (list[Tensor]): per image, (n,) person scores.
        feature_frames (tuple[Tensor, Tensor]): on the host, (B, 3, 3) float64 input-image
            continuous coordinates -> feature-map pixels and (B, 2) the aligner's source sizes.
        image_sizes, output_sizes (list[tuple[int, int]]): (height, width) of each input image
            and of its output.
    """
    counts = [len(k) for k in keypoints_per_image]
    feature_from_input, feature_sizes = feature_frames
    num_images = len(image_sizes)
    per_image = torch.cat(
        [
            torch.arange(num_images, dtype=torch.float64)[:, None],
            feature_from_input.to(torch.float64).reshape(num_images, 9),
            feature_sizes.to(torch.float64).reshape(num_images, 2),
            _sizes_tensor(image_sizes),
            _sizes_tensor(output_sizes),
        ],
        dim=1,
    )
    per_person = to_device(per_image.repeat_interleave(torch.tensor(counts), dim=0), device)
    keypoints = cat_to_device([k.reshape(-1, NUM_KEYPOINTS, 3).to(torch.float32) for k in keypoints_per_image], device)
    scores = cat_to_device([s.reshape(-1).to(torch.float32) for s in scores_per_image], device)
    return Persons(
        keypoints=keypoints,
        scores=scores,
        batch_index=per_person[:, 0].long(),
        feature_from_input=per_person[:, 1:10].reshape(-1, 3, 3),
        feature_sizes=per_person[:, 10:12],
        input_sizes=per_person[:, 12:14],
        output_sizes=per_person[:, 14:16],
        counts=counts,
    )


def _sizes_tensor(sizes):
    """(B, 2) float64 from B (height, width) pairs of ints, or of 0-dim tensors, or (2,) tensors
    (as ``ImageList.image_sizes`` holds them while a model is traced)."""
    return torch.tensor([[float(h), float(w)] for h, w in sizes], dtype=torch.float64).reshape(len(sizes), 2)
