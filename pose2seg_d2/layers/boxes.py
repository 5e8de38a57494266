"""Boxes of binary masks, for all masks at once."""
import torch

__all__ = ["boxes_from_masks"]


def boxes_from_masks(masks, offsets=None):
    """
    Tight boxes of binary masks, as Detectron2's ``BitMasks.get_bounding_boxes`` gives them,
    without its loop over the masks (nor any value read on the host).

    Args:
        masks (Tensor): (N, H, W) bool.
        offsets (Tensor): (N, 2) (x, y) added to each non-empty box, e.g. where a crop lies in
            its image; None for none.

    Returns:
        Tensor (N, 4) float32 (x1, y1, x2, y2) on the masks' device: the first and one past the
        last column and row holding a True pixel (pixel edges), plus the offset; all 0 for an
        empty mask.
    """
    num, height, width = masks.shape
    cols = masks.any(dim=1)  # (N, W)
    rows = masks.any(dim=2)  # (N, H)
    xs = torch.arange(width, device=masks.device)
    ys = torch.arange(height, device=masks.device)
    # first index: the smallest position holding True; one past the last: the largest + 1
    x1 = torch.where(cols, xs, width).amin(dim=1)
    x2 = torch.where(cols, xs + 1, 0).amax(dim=1)
    y1 = torch.where(rows, ys, height).amin(dim=1)
    y2 = torch.where(rows, ys + 1, 0).amax(dim=1)
    boxes = torch.stack([x1, y1, x2, y2], dim=1)
    if offsets is not None:
        boxes = boxes + offsets.repeat(1, 2)
    return torch.where(cols.any(dim=1, keepdim=True), boxes, 0).to(torch.float32)
