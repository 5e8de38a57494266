"""Pose2Seg as a Detectron2 meta-architecture."""
import math

import torch
import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY, build_backbone
from detectron2.structures import BitMasks, ImageList, Instances, PolygonMasks
from torch import nn

from ..layers import affine_align, warp_windows_to_image
from ..pose import random_window_augmentation, scale_matrix, transform_keypoints
from .aligners import build_aligner
from .keypoint_sources import build_keypoint_source
from .seg_module import build_pose2seg_head
from .skeleton_features import build_skeleton_features

__all__ = ["Pose2Seg", "feature_from_input_matrix", "continuous_from_pixel_matrix", "mask_confidence"]


def feature_from_input_matrix(stride, dtype=torch.float64, device=None):
    """
    (3, 3) map from input-image continuous coordinates (pixel i spans [i, i + 1], Detectron2's
    keypoint convention) to feature-map pixel coordinates (centers at integers): feature pixel
    j covers input [stride * j, stride * (j + 1)), so j = x / stride - 0.5.
    """
    s = 1.0 / stride
    return torch.tensor([[s, 0.0, -0.5], [0.0, s, -0.5], [0.0, 0.0, 1.0]], dtype=dtype, device=device)


def continuous_from_pixel_matrix(scale_x=1.0, scale_y=1.0, dtype=torch.float64, device=None):
    """
    (3, 3) map from pixel coordinates (centers at integers) of an image to continuous
    coordinates of a resized copy: x -> (x + 0.5) * scale_x.
    """
    return torch.tensor(
        [[scale_x, 0.0, 0.5 * scale_x], [0.0, scale_y, 0.5 * scale_y], [0.0, 0.0, 1.0]],
        dtype=dtype,
        device=device,
    )


@META_ARCH_REGISTRY.register()
class Pose2Seg(nn.Module):
    """
    Pose-based, detection-free human instance segmentation (SPEC §2): one mask per given
    skeleton. The backbone's ``in_feature`` map is sampled into a window per person by the
    aligner, skeleton channels are added, and the head predicts the mask in the window, which is
    warped back into the image at inference.
    """

    @configurable
    def __init__(
        self,
        *,
        backbone,
        in_feature,
        keypoint_source,
        aligner,
        skeleton,
        head,
        window_size,
        pixel_mean,
        pixel_std,
        max_instances_per_batch=8,
        augmentation=None,
        mask_threshold=0.5,
        score="person_x_mask",
    ):
        """
        Args:
            backbone (Backbone): must output ``in_feature``.
            in_feature (str): the feature map the windows are sampled from.
            keypoint_source (callable): gives persons at inference (see keypoint_sources.py).
            aligner (nn.Module): feature -> window matrices per person (see aligners.py).
            skeleton (nn.Module): skeleton channels, with ``num_channels``.
            head (nn.Module): window inputs -> (N, 1 or 2, h, w) logits.
            window_size (tuple[int, int]): (h, w).
            pixel_mean, pixel_std (tuple[float]): input normalization.
            max_instances_per_batch (int): persons sampled per training batch.
            augmentation (dict or None): ``angle``, ``scale``, ``translate`` ranges of the
                training window augmentation; None disables it.
            mask_threshold (float): probability threshold of the pasted masks.
            score (str): "person_x_mask" (the person score times the mask's confidence, see
                :func:`mask_confidence`) or "person" (the person score alone).
        """
        super().__init__()
        self.backbone = backbone
        self.in_feature = in_feature
        self.stride = backbone.output_shape()[in_feature].stride
        self.keypoint_source = keypoint_source
        self.aligner = aligner
        self.skeleton = skeleton
        self.head = head
        self.window_size = tuple(window_size)
        self.max_instances_per_batch = max_instances_per_batch
        self.augmentation = augmentation
        self.mask_threshold = mask_threshold
        if score not in ("person_x_mask", "person"):
            raise ValueError(f"MODEL.POSE2SEG.SCORE must be 'person_x_mask' or 'person', got {score!r}")
        self.score = score
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), False)

    @classmethod
    def from_config(cls, cfg):
        p = cfg.MODEL.POSE2SEG
        backbone = build_backbone(cfg)
        if p.IN_FEATURE not in backbone.output_shape():
            raise ValueError(
                f"MODEL.POSE2SEG.IN_FEATURE={p.IN_FEATURE!r} is not a backbone output "
                f"({sorted(backbone.output_shape())})"
            )
        skeleton = build_skeleton_features(cfg)
        in_channels = backbone.output_shape()[p.IN_FEATURE].channels + skeleton.num_channels
        augmentation = None
        if p.AUGMENT:
            augmentation = {"angle": p.AUG_ANGLE, "scale": p.AUG_SCALE, "translate": p.AUG_TRANSLATE}
        return {
            "backbone": backbone,
            "in_feature": p.IN_FEATURE,
            "keypoint_source": build_keypoint_source(cfg),
            "aligner": build_aligner(cfg),
            "skeleton": skeleton,
            "head": build_pose2seg_head(cfg, in_channels),
            "window_size": tuple(p.WINDOW_SIZE),
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
            "max_instances_per_batch": p.MAX_INSTANCES_PER_BATCH,
            "augmentation": augmentation,
            "mask_threshold": p.MASK_THRESHOLD,
            "score": p.SCORE,
        }

    @property
    def device(self):
        return self.pixel_mean.device

    def preprocess_image(self, batched_inputs):
        images = [(x["image"].to(self.device) - self.pixel_mean) / self.pixel_std for x in batched_inputs]
        images = ImageList.from_tensors(
            images, self.backbone.size_divisibility, padding_constraints=self.backbone.padding_constraints
        )
        if images.tensor.device.type == "cpu":
            # Channels-last on the CPU: the ResNet-FPN runs about 10% faster, and its feature maps
            # come out in the layout affine_align gathers from, without a copy.
            images = ImageList(images.tensor.contiguous(memory_format=torch.channels_last), images.image_sizes)
        return images

    # ------------------------------------------------------------------ shared
    def _persons(self, keypoints_per_image, image_sizes):
        """Concatenate persons: keypoints (N, 17, 3), batch_index (N,), feature sizes (N, 2)."""
        counts = torch.tensor([len(k) for k in keypoints_per_image], device=self.device)
        keypoints = torch.cat([k.to(self.device, torch.float32) for k in keypoints_per_image])
        batch_index = torch.repeat_interleave(torch.arange(len(counts), device=self.device), counts)
        sizes = torch.tensor(
            [[math.ceil(h / self.stride), math.ceil(w / self.stride)] for h, w in image_sizes],
            dtype=torch.float64,
            device=self.device,
        )
        return keypoints, batch_index, sizes[batch_index]

    def _window_logits(self, features, keypoints, batch_index, feature_sizes):
        """
        Returns:
            logits (N, C, h, w) and the (N, 3, 3) float64 matrices input-image continuous
            coordinates -> window pixels.
        """
        window_from_feature = self._align(keypoints, feature_sizes)
        window_from_input = window_from_feature @ feature_from_input_matrix(self.stride, device=self.device)
        window_keypoints = transform_keypoints(keypoints, window_from_input)
        skeleton = self.skeleton(window_keypoints, self.window_size)
        aligned = affine_align(features, window_from_feature, batch_index, self.window_size)
        # aligned has channels-last strides; on the CPU, where the head runs channels-last, give
        # the skeleton channels the same layout so that the concatenation needs no conversion
        layout = torch.channels_last if aligned.device.type == "cpu" else torch.contiguous_format
        inputs = torch.cat([aligned, skeleton.to(aligned.dtype).contiguous(memory_format=layout)], dim=1)
        return self.head(inputs), window_from_input

    def _align(self, keypoints, feature_sizes):
        feature_keypoints = transform_keypoints(keypoints, feature_from_input_matrix(self.stride, device=self.device))
        matrices = self.aligner(feature_keypoints, feature_sizes).to(torch.float64)
        if self.training and self.augmentation is not None:
            a = self.augmentation
            jitter = random_window_augmentation(
                len(matrices), self.window_size, a["angle"], a["scale"], a["translate"]
            ).to(self.device)
            matrices = jitter @ matrices
        return matrices

    def _probabilities(self, logits):
        if logits.shape[1] == 1:
            return logits[:, 0].sigmoid()
        return logits.softmax(dim=1)[:, 1]

    # ------------------------------------------------------------------ training
    def forward(self, batched_inputs):
        """
        Args:
            batched_inputs (list[dict]): Detectron2's inputs (``image``; in training
                ``instances`` with ``gt_keypoints`` and ``gt_masks``; ``height``/``width``
                for the output size at inference).

        Returns:
            dict[str, Tensor] of losses in training; list[dict] with ``instances`` otherwise.
        """
        if not self.training:
            return self.inference(batched_inputs)
        images = self.preprocess_image(batched_inputs)
        all_features = self.backbone(images.tensor)
        features = all_features[self.in_feature]
        # The backbone's other outputs (e.g. FPN p3-p6) are unused; a zero term keeps their
        # parameters in the graph, as DistributedDataParallel requires.
        unused = sum(f.sum() for name, f in all_features.items() if name != self.in_feature) * 0.0
        instances = [x["instances"].to(self.device) for x in batched_inputs]
        keypoints, batch_index, feature_sizes = self._persons(
            [i.gt_keypoints.tensor for i in instances], images.image_sizes
        )
        chosen = torch.arange(len(keypoints), device=self.device)
        if len(chosen) > self.max_instances_per_batch:
            chosen = torch.randperm(len(chosen), device=self.device)[: self.max_instances_per_batch]
        if len(chosen) == 0:
            # no person in the batch: a zero loss that still reaches every parameter
            zero = features.sum() * 0.0 + sum(p.sum() * 0.0 for p in self.head.parameters())
            return {"loss_mask": zero + unused}

        logits, window_from_input = self._window_logits(
            features, keypoints[chosen], batch_index[chosen], feature_sizes[chosen]
        )
        masks = self._padded_gt_masks(instances, images)[chosen]
        window_from_pixel = window_from_input @ continuous_from_pixel_matrix(device=self.device)
        targets = sample_masks_into_windows(masks, window_from_pixel, self.window_size)
        return {"loss_mask": self._mask_loss(logits, targets) + unused}

    def _padded_gt_masks(self, instances, images):
        """(N, H, W) float masks of all persons at the padded batch size."""
        height, width = images.tensor.shape[-2:]
        padded = []
        for inst, (h, w) in zip(instances, images.image_sizes):
            masks = inst.gt_masks
            if isinstance(masks, PolygonMasks):
                masks = BitMasks.from_polygon_masks(masks, h, w)
            m = masks.tensor.to(self.device, torch.float32)
            padded.append(F.pad(m, (0, width - m.shape[-1], 0, height - m.shape[-2])))
        return torch.cat(padded)

    def _mask_loss(self, logits, targets):
        """targets: (N, h, w) in [0, 1], binarized at 0.5."""
        binary = targets >= 0.5
        if logits.shape[1] == 1:
            return F.binary_cross_entropy_with_logits(logits[:, 0], binary.to(logits.dtype))
        return F.cross_entropy(logits, binary.long())

    # ------------------------------------------------------------------ inference
    def inference(self, batched_inputs, do_postprocess=True):
        """
        Returns:
            list[dict]: ``{"instances": Instances}`` per image, at the ``height`` x ``width`` of
            the input dict (or the input image size without ``do_postprocess``), with
            ``pred_masks`` (N, H, W) bool, ``pred_boxes`` (the masks' boxes), ``scores``,
            ``pred_classes`` (all 0, person) and ``pred_keypoints`` (N, 17, 3) in that image's
            continuous coordinates, (0, 0, 0) for keypoints treated as unlabeled; sorted by
            score, highest first (the score rule is MODEL.POSE2SEG.SCORE). Every given
            person gets a mask; one without usable keypoints (NaN, infinite, far out of the
            image, fewer than 3) gets the aligner's fallback window (see
            :meth:`PoseTemplates.fit`), so the outputs are finite for any keypoints.
        """
        assert not self.training
        images = self.preprocess_image(batched_inputs)
        features = self.backbone(images.tensor)[self.in_feature]
        sources = self.keypoint_source(batched_inputs, images)
        keypoints, batch_index, feature_sizes = self._persons([k for k, _ in sources], images.image_sizes)
        scores = torch.cat([s.to(self.device, torch.float32) for _, s in sources])
        if len(keypoints):
            logits, window_from_input = self._window_logits(features, keypoints, batch_index, feature_sizes)
            probabilities = self._probabilities(logits)
            if self.score == "person_x_mask":
                scores = scores * mask_confidence(probabilities, self.mask_threshold)
        results = []
        for i, (x, (h, w)) in enumerate(zip(batched_inputs, images.image_sizes)):
            out_h, out_w = (x.get("height", h), x.get("width", w)) if do_postprocess else (h, w)
            members = (batch_index == i).nonzero()[:, 0]
            members = members[scores[members].argsort(descending=True, stable=True)]
            result = Instances((out_h, out_w))
            input_from_output = continuous_from_pixel_matrix(w / out_w, h / out_h, device=self.device)
            if len(members):
                window_from_output = window_from_input[members] @ input_from_output
                masks = warp_windows_to_image(probabilities[members], window_from_output, (out_h, out_w))
                masks = masks >= self.mask_threshold
            else:
                masks = torch.zeros(0, out_h, out_w, dtype=torch.bool, device=self.device)
            # in output coordinates; keypoints the model left out as unlabeled (NaN, infinite,
            # out of bounds: see labeled_mask) come back as (0, 0, 0)
            person_keypoints = transform_keypoints(keypoints[members], scale_matrix(out_w / w, out_h / h))
            result.pred_masks = masks
            result.pred_boxes = BitMasks(masks).get_bounding_boxes()
            result.scores = scores[members]
            result.pred_classes = torch.zeros(len(members), dtype=torch.long, device=self.device)
            result.pred_keypoints = person_keypoints
            results.append({"instances": result})
        return results


def mask_confidence(probabilities, threshold):
    """
    Args:
        probabilities (Tensor): (N, h, w) person probabilities in the windows.
        threshold (float): the mask threshold.

    Returns:
        Tensor (N,): the mean probability over each window's pixels at or above ``threshold``,
        0 for a window without any.
    """
    inside = probabilities >= threshold
    total = (probabilities * inside).sum(dim=(1, 2))
    return total / inside.sum(dim=(1, 2)).clamp(min=1)


def sample_masks_into_windows(masks, window_from_pixel, window_size):
    """Sample each person's image mask (N, H, W) into its window: (N, h, w)."""
    batch_index = torch.arange(len(masks), device=masks.device)
    return affine_align(masks[:, None], window_from_pixel, batch_index, window_size)[:, 0]
