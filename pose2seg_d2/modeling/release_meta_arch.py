"""Pose2Seg with the release's test-time conventions, to run its trained model (SPEC §6)."""
import dataclasses

import torch
import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY
from detectron2.structures import ImageList

from ..layers import affine_align
from ..pose import (
    align_corners_sampling_matrices,
    random_window_augmentation,
    release_input_matrices,
    scale_matrix,
    transform_keypoints,
)
from .meta_arch import Pose2Seg

__all__ = ["ReleasePose2Seg", "pixel_from_continuous_matrix"]


def pixel_from_continuous_matrix(dtype=torch.float64, device=None):
    """(3, 3): Detectron2's continuous coordinates (pixel i spans [i, i + 1]) -> pixel
    coordinates with centers at integers (the release's and COCO's keypoint numbers): x - 0.5."""
    return torch.tensor([[1.0, 0.0, -0.5], [0.0, 1.0, -0.5], [0.0, 0.0, 1.0]], dtype=dtype, device=device)


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
      mapped into the input, then into the feature map by a plain 1 / stride scale; the fit's
      source is the whole (S / stride)^2 map, whatever part of it the image covers (so the
      release fallback squeezes all of it into the window);
    - windows: sampled as PyTorch 1.0's ``affine_grid`` / ``grid_sample`` sampled them
      (:func:`align_corners_sampling_matrices`); the skeleton is rendered with the fit's own
      matrix;
    - masks: warped back through window <- feature map <- input <- image.

    The head (a 2-class SegModule with FrozenBN and corner-aligned upsampling) and the
    backbone (``build_release_resnet_fpn_backbone``) come from the config. Training works too
    (the same input, plus the window augmentation of MODEL.POSE2SEG.AUGMENT).
    """

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
        sizes = [tuple(x["image"].shape[-2:]) for x in batched_inputs]
        side = self.input_size
        input_from_image = release_input_matrices(torch.tensor(sizes, dtype=torch.float64), side)
        pixels = torch.arange(side, dtype=torch.float64)
        warped = []
        for x, m, (h, w) in zip(batched_inputs, input_from_image, sizes):  # one warp per image: sizes differ
            # input pixel (u, v) -> grid_sample's normalized image coordinates (align_corners=False:
            # pixel x is at (2x + 1) / w - 1), separable in u and v
            normalized_from_image = torch.tensor(
                [[2 / w, 0, 1 / w - 1], [0, 2 / h, 1 / h - 1], [0, 0, 1]], dtype=torch.float64
            )
            g = (normalized_from_image @ torch.linalg.inv(m))[:2]
            grid = (g[:, 0] * pixels[:, None])[None] + (g[:, 1] * pixels[:, None] + g[:, 2])[:, None]
            image = x["image"].to(self.device, torch.float32)[None]
            grid = grid.to(image)[None]  # (1, side, side, 2)
            warped.append(F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False))
        # bilinear with zeros outside, as cv2.warpAffine; the release warps uint8 images, so its
        # inputs are whole numbers. (OpenCV's own versions differ from this by a grey level here
        # and there: OpenCV 3, which the release ran with, puts samples on a 1/32-pixel grid.)
        tensor = (torch.cat(warped).round() - self.pixel_mean) / self.pixel_std
        layout = torch.channels_last if tensor.device.type == "cpu" else torch.contiguous_format
        return ImageList(tensor.contiguous(memory_format=layout), sizes)

    def feature_from_image_matrices(self, image_sizes):
        """
        Args:
            image_sizes (list[tuple[int, int]]): (height, width) of the given images.

        Returns:
            Tensor (B, 3, 3) float64: image continuous coordinates -> feature-map pixels, the
            release's ``m2 m1`` after Detectron2's +0.5.
        """
        feature_side = self.input_size // self.stride
        sizes = torch.tensor(image_sizes, dtype=torch.float64, device=self.device).reshape(-1, 2)
        input_from_image = release_input_matrices(sizes, self.input_size)
        feature_from_input = scale_matrix(feature_side / self.input_size, feature_side / self.input_size, device=self.device)
        return feature_from_input @ input_from_image @ pixel_from_continuous_matrix(device=self.device)

    def _persons(self, keypoints_per_image, scores_per_image, image_sizes, output_sizes=None):
        """
        As :meth:`Pose2Seg._persons`, except that ``feature_sizes`` holds each person's (N, 3, 3)
        image -> feature-map matrix (:meth:`feature_from_image_matrices`), which
        :meth:`_window_inputs` takes in its place.
        """
        persons = super()._persons(keypoints_per_image, scores_per_image, image_sizes, output_sizes)
        matrices = self.feature_from_image_matrices(image_sizes)[persons.batch_index]
        return dataclasses.replace(persons, feature_sizes=matrices)

    def _window_inputs(self, features, keypoints, batch_index, feature_from_image):
        """
        As :meth:`Pose2Seg._window_inputs`, with the release's geometry.

        Args:
            features (Tensor): (B, C, H, W) the feature map of the square inputs.
            keypoints (Tensor): (N, 17, 3) in image continuous coordinates.
            batch_index (Tensor): (N,).
            feature_from_image (Tensor): (N, 3, 3), see :meth:`_persons`.

        Returns:
            the head's inputs (N, C + S, h, w) and the (N, 3, 3) float64 matrices image
            continuous coordinates -> window pixels.
        """
        num = keypoints.shape[0]
        feature_size = tuple(features.shape[-2:])
        feature_keypoints = transform_keypoints(keypoints, feature_from_image)
        sources = torch.tensor(feature_size, dtype=torch.float64, device=self.device).expand(num, 2)
        window_from_feature = self.aligner(feature_keypoints, sources).to(torch.float64)
        if self.training and self.augmentation is not None:
            a = self.augmentation
            jitter = random_window_augmentation(
                num, self.window_size, a["angle"], a["scale"], a["translate"], device=self.device
            )
            window_from_feature = jitter @ window_from_feature
        window_from_image = window_from_feature @ feature_from_image
        skeleton = self.skeleton(transform_keypoints(keypoints, window_from_image), self.window_size)
        sampling = align_corners_sampling_matrices(window_from_feature, feature_size)
        # batch_index is built by _persons, in range: no check (it would read it on the host)
        aligned = affine_align(features, sampling, batch_index, self.window_size, check_batch_index=False)
        layout = torch.channels_last if aligned.device.type == "cpu" else torch.contiguous_format
        inputs = torch.cat([aligned, skeleton.to(aligned.dtype).contiguous(memory_format=layout)], dim=1)
        return inputs, window_from_image

    def _mask_canvas_size(self, images):
        """The largest image's (H, W): the windows map image coordinates here, not the square
        input's, so the masks stay at the images' own size."""
        return max(h for h, _ in images.image_sizes), max(w for _, w in images.image_sizes)
