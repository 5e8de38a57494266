"""
Pose2Seg's training targets: the persons segmented in a batch, their ground-truth masks sampled
into their windows, and the mask loss.
"""
import torch
import torch.nn.functional as F
from detectron2.structures import BitMasks, PolygonMasks

from ..layers import affine_align
from ..utils import cat_to_device, to_device

__all__ = ["choose_persons", "padded_gt_masks", "sample_masks_into_windows", "mask_loss"]


def choose_persons(counts, max_persons):
    """
    The persons segmented in a training batch: all, or ``max_persons`` of them at random. Drawn
    on the host, where the numbers of persons are.

    Args:
        counts (list[int]): the number of persons of each image.
        max_persons (int): MODEL.POSE2SEG.MAX_INSTANCES_PER_BATCH.

    Returns:
        list[Tensor]: per image, the (long, ascending) indices of its chosen persons.
    """
    total = sum(counts)
    chosen = torch.arange(total)
    if total > max_persons:
        chosen = torch.randperm(total)[:max_persons].sort().values
    starts = [sum(counts[:i]) for i in range(len(counts))]
    return [chosen[(chosen >= s) & (chosen < s + n)] - s for s, n in zip(starts, counts)]


def padded_gt_masks(instances, chosen, image_sizes, canvas_size, device):
    """
    The chosen persons' ground-truth masks, rasterized and padded on the host, copied as one bool
    tensor.

    Args:
        instances (list[Instances]): per image, with ``gt_masks`` (PolygonMasks, BitMasks or a
            (n, h, w) tensor) at that image's (h, w) of ``image_sizes``.
        chosen (list[Tensor]): per image, the indices of its chosen persons.
        image_sizes (list[tuple[int, int]]): (h, w) of each image.
        canvas_size (tuple[int, int]): (H, W) every mask is padded to (at the bottom and right).

    Returns:
        Tensor (N, H, W) float32 on ``device``, 0 or 1, the chosen persons in image order.
    """
    height, width = canvas_size
    padded = []
    for inst, index, (h, w) in zip(instances, chosen, image_sizes):
        if len(index) == 0:
            continue
        masks = inst.gt_masks
        if isinstance(masks, PolygonMasks):
            masks = BitMasks.from_polygon_masks(masks[index], h, w).tensor
        else:
            masks = getattr(masks, "tensor", masks)  # BitMasks or a tensor
            masks = masks[index if masks.device.type == "cpu" else to_device(index, masks.device)]
        masks = masks.to(torch.bool)
        padded.append(F.pad(masks, (0, width - masks.shape[-1], 0, height - masks.shape[-2])))
    return cat_to_device(padded, device).to(torch.float32)


def sample_masks_into_windows(masks, window_from_pixel, window_size):
    """
    Args:
        masks (Tensor): (N, H, W) each person's mask in its image.
        window_from_pixel (Tensor): (N, 3, 3) image pixels (centers at integers) -> window pixels.
        window_size (tuple[int, int]): (h, w).

    Returns:
        Tensor (N, h, w): each mask sampled bilinearly into its window, 0 outside the image.
    """
    batch_index = torch.arange(len(masks), device=masks.device)
    return affine_align(masks[:, None], window_from_pixel, batch_index, window_size, check_batch_index=False)[:, 0]


def mask_loss(logits, targets):
    """
    Args:
        logits (Tensor): (N, C, h, w) the head's; C = 1 (sigmoid and binary cross-entropy) or 2
            (background / person, softmax and cross-entropy).
        targets (Tensor): (N, h, w) in [0, 1], binarized at 0.5.
    """
    binary = targets >= 0.5
    if logits.shape[1] == 1:
        return F.binary_cross_entropy_with_logits(logits[:, 0], binary.to(logits.dtype))
    return F.cross_entropy(logits, binary.long())
