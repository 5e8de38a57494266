"""Pose2Seg's inference on one image as one exportable graph (torch.export, ONNX)."""
import torch
import torch.nn.functional as F
from torch import nn

from ..layers.paste import paste_image_masks, paste_plan
from ..modeling.mask_scores import mask_confidence, window_probabilities
from ..modeling.meta_arch import Pose2Seg
from ..pose import continuous_from_pixel_matrices
from ..release import ReleasePose2Seg

__all__ = ["ExportablePose2Seg", "size_divisibility"]


def size_divisibility(model):
    """What the model pads its input image's sides to a multiple of, as ImageList.from_tensors
    does (the backbone's padding constraints first)."""
    backbone = model.backbone
    return (backbone.padding_constraints or {}).get("size_divisibility", backbone.size_divisibility)


class ExportablePose2Seg(nn.Module):
    """
    ``(image, keypoints) -> (masks, scores)``: what :meth:`Pose2Seg.inference` computes for one
    image whose persons are given, as tensor work alone, so that ``torch.export`` traces it into
    one graph for any number of persons and any image size.

    What differs from the eager inference, and why:

    - one image; its masks at the size of the image given (the eager model can map them to
      another output size);
    - the persons stay in the order given (the eager model sorts them by score), and every
      person scores as if its person score were 1: with MODEL.POSE2SEG.SCORE
      "person_x_mask" the score is the mask's confidence, with "person" it is 1, so
      multiplying by a pose estimator's person scores outside gives the eager scores;
    - the warp-back samples every window over the whole image (the eager model samples crops
      whose size it reads on the host, a data-dependent shape);
    - the head takes all persons at once (no TEST_PERSONS_PER_CHUNK), in float32 (no
      MODEL.POSE2SEG.AUTOCAST), and MODEL.POSE2SEG.COMPILE is not used.
    """

    def __init__(self, model):
        """
        Args:
            model (Pose2Seg): a :class:`Pose2Seg` or :class:`ReleasePose2Seg` in eval mode.
        """
        super().__init__()
        if not isinstance(model, Pose2Seg):
            raise TypeError(f"ExportablePose2Seg exports Pose2Seg and ReleasePose2Seg, not {type(model).__name__}")
        if model.training:
            raise ValueError("ExportablePose2Seg: put the model in eval mode first (model.eval())")
        if (model.backbone.padding_constraints or {}).get("square_size", 0) > 0:
            raise ValueError("ExportablePose2Seg: a backbone padding its inputs to squares (square_size) is not supported")
        self.model = model

    def forward(self, image, keypoints):
        """
        Args:
            image (Tensor): (3, H, W) float32 pixel values in the model's INPUT.FORMAT, as
                the model's ``image`` input holds them (for :class:`Pose2Seg`, already resized
                to the test size; the release's model takes the image at its own size).
            keypoints (Tensor): (N, 17, 3) float32 (x, y, v) in the image's continuous
                coordinates (pixel (i, j) spans [i, i + 1]); v > 0 means labeled.

        Returns:
            tuple: ``masks`` (N, H, W) bool and ``scores`` (N,) float32, in the persons' order.
        """
        model = self.model
        image_size = (image.shape[-2], image.shape[-1])
        features = model.backbone(self._network_input(image))[model.in_feature]
        num = keypoints.shape[0]
        feature_from_input, feature_sizes = model._feature_frames([image_size])
        feature_from_input = feature_from_input.to(features.device).expand(num, 3, 3)
        feature_sizes = feature_sizes.to(features.device).expand(num, 2)
        batch_index = torch.zeros(num, dtype=torch.long, device=features.device)
        inputs, window_from_input = type(model)._window_inputs(
            model, features, keypoints, batch_index, feature_from_input, feature_sizes
        )
        probabilities = window_probabilities(model.head(inputs))
        scores = torch.ones(num, dtype=torch.float32, device=features.device)
        if model.score == "person_x_mask":
            scores = scores * mask_confidence(probabilities, model.mask_threshold)
        # output = input image: the same product the eager model forms
        window_from_output = window_from_input @ continuous_from_pixel_matrices(
            torch.ones(num, 2, dtype=torch.float64, device=features.device)
        )
        sizes = torch.tensor(image_size, dtype=torch.float64, device=features.device).expand(num, 2)
        footprints, _ = paste_plan(window_from_output, model.window_size, sizes, batch_index, 1)
        masks, _ = paste_image_masks(
            probabilities, window_from_output, image_size, model.mask_threshold, image_size, footprints
        )
        return masks, scores

    def _network_input(self, image):
        """(1, 3, H', W'): the backbone's input, as the model's ``preprocess_image`` makes it."""
        model = self.model
        if isinstance(model, ReleasePose2Seg):
            return model.preprocess_image([{"image": image}]).tensor
        # Pose2Seg pads with ImageList.from_tensors, whose padded size is a tensor: the same
        # padding here, with the padded sizes as multiples of the divisibility so that the
        # backbone's sizes simplify symbolically; channels-last, as the eager model on the CPU
        divisibility = size_divisibility(model)
        height, width = image.shape[-2], image.shape[-1]
        normalized = (image.to(model.device, torch.float32) - model.pixel_mean) / model.pixel_std
        if divisibility > 1:
            padded_h = (height + divisibility - 1) // divisibility * divisibility
            padded_w = (width + divisibility - 1) // divisibility * divisibility
            normalized = F.pad(normalized, (0, padded_w - width, 0, padded_h - height))
        return normalized[None].contiguous(memory_format=torch.channels_last)
