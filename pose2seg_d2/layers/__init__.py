from .affine_align import AffineAlign, affine_align, bilinear_taps, window_to_source_coordinates

__all__ = ["AffineAlign", "affine_align", "bilinear_taps", "window_to_source_coordinates"]
