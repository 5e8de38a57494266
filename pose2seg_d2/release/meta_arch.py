"""Pose2Seg with the release's test-time conventions, to run its trained model (docs/method.md §6)."""
import torch
from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY
from detectron2.structures import ImageList

from ..modeling.meta_arch import Pose2Seg
from ..utils import to_device, to_network_layout
from .geometry import align_corners_sampling_matrices, feature_from_image_matrices, warp_into_input

__all__ = ["ReleasePose2Seg"]


@META_ARCH_REGISTRY.register()
class ReleasePose2Seg(Pose2Seg):
    """
    :class:`Pose2Seg` computing what the release computes at test time, so that its trained
    model (converted by ``tools/convert_release_checkpoint.py``) gives its masks
    (``configs/pose2seg_R_50_FPN_release.yaml``):

    - input: every image is warped (bilinear, zeros outside) into an S x S square (S =
      MODEL.POSE2SEG.RELEASE_INPUT_SIZE, 512), scaled to fit with its aspect kept and centered
      (:func:`release_input_matrices`), rounded to integers as the release's uint8 warp is,
      then normalized by MODEL.PIXEL_MEAN / PIXEL_STD (the release: RGB / 255, ImageNet mean
      and std); give it the images at their own size (INPUT.MIN_SIZE_TEST 0);
    - keypoints: read in the release's pixel convention (Detectron2's coordinates - 0.5),
      mapped into the input, then into the feature map by a plain 1 / stride scale
      (:func:`feature_from_image_matrices`); the fit's source is the whole (S / stride)^2 map,
      whatever part of it the image covers (so the "whole_map" fallback squeezes all of it into
      the window);
    - windows: sampled as PyTorch 1.0's ``affine_grid`` / ``grid_sample`` sampled them
      (:func:`align_corners_sampling_matrices`); the skeleton is rendered with the fit's own
      matrix;
    - masks: warped back through window <- feature map <- input <- image.

    Everything else is :class:`Pose2Seg`'s. The head (a 2-class SegModule with FrozenBN and
    corner-aligned upsampling) and the backbone (``build_release_resnet_fpn_backbone``) come
    from the config. Training works too (the same input, plus the window augmentation of
    MODEL.POSE2SEG.AUGMENT).
    """

    # its features are of the warped square, not of the input images
    shares_features_with_keypoint_source = False

    @configurable
    def __init__(self, *, input_size=512, **kwargs):
        """
        Args:
            input_size (int): S, a multiple of the backbone's size divisibility.
            kwargs: as :class:`Pose2Seg`.
        """
        super().__init__(**kwargs)
        divisibility = max(self.backbone.size_divisibility, self.stride)
        if input_size <= 0 or input_size % divisibility:
            raise ValueError(
                f"MODEL.POSE2SEG.RELEASE_INPUT_SIZE must be a positive multiple of {divisibility}, got {input_size}"
            )
        self.input_size = int(input_size)

    @classmethod
    def from_config(cls, cfg):
        ret = super().from_config(cfg)
        ret["input_size"] = cfg.MODEL.POSE2SEG.RELEASE_INPUT_SIZE
        return ret

    def preprocess_image(self, batched_inputs):
        """
        Returns:
            ImageList: the (B, 3, S, S) normalized inputs, with ``image_sizes`` the sizes of the
            given images (keypoint sources and outputs stay in their coordinates).
        """
        images = [to_device(x["image"], self.device).to(torch.float32) for x in batched_inputs]
        tensor = (warp_into_input(images, self.input_size) - self.pixel_mean) / self.pixel_std
        return ImageList(to_network_layout(tensor, self.channels_last), [tuple(i.shape[-2:]) for i in images])

    def _feature_frames(self, image_sizes):
        """
        As :meth:`Pose2Seg._feature_frames`: each image's :func:`feature_from_image_matrices`,
        and for every image the whole (S / stride, S / stride) feature map as the fit's source.
        """
        sizes = torch.tensor(image_sizes, dtype=torch.float64).reshape(-1, 2)
        feature_side = self.input_size // self.stride
        feature_from_image = feature_from_image_matrices(sizes, self.input_size, feature_side)
        return feature_from_image, torch.full((len(sizes), 2), float(feature_side), dtype=torch.float64)

    def _sampling_matrices(self, window_from_feature, feature_size):
        """The windows sampled as the release sampled them: :func:`align_corners_sampling_matrices`."""
        return align_corners_sampling_matrices(window_from_feature, feature_size)

    def _mask_canvas_size(self, images):
        """The largest image's (H, W): the windows map image coordinates here, not the square
        input's, so the masks stay at the images' own size."""
        return max(h for h, _ in images.image_sizes), max(w for _, w in images.image_sizes)
