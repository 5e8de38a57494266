from .affine_align import AffineAlign, affine_align, bilinear_taps, safe_inverse, window_to_source_coordinates
from .boxes import boxes_from_masks
from .paste import (
    paste_image_masks,
    paste_masks,
    paste_masks_in_crops,
    paste_plan,
    read_crop_sizes,
    warp_windows_to_image,
    window_footprints,
)

__all__ = [
    "AffineAlign",
    "affine_align",
    "bilinear_taps",
    "boxes_from_masks",
    "paste_image_masks",
    "paste_masks",
    "paste_masks_in_crops",
    "paste_plan",
    "read_crop_sizes",
    "safe_inverse",
    "warp_windows_to_image",
    "window_footprints",
    "window_to_source_coordinates",
]
