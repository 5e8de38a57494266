from .affine_align import AffineAlign, affine_align, bilinear_taps, safe_inverse, window_to_source_coordinates
from .paste import warp_windows_to_image, window_footprints

__all__ = ["AffineAlign", "affine_align", "bilinear_taps", "safe_inverse", "warp_windows_to_image", "window_footprints", "window_to_source_coordinates"]
