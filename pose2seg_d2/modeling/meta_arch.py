"""Pose2Seg as a Detectron2 meta-architecture."""
import contextlib

import torch
from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY, build_backbone
from detectron2.structures import ImageList
from torch import nn

from ..layers import affine_align, paste_masks_in_crops, read_crop_sizes
from ..pose import (
    continuous_from_pixel_matrices,
    feature_from_input_matrix,
    random_window_augmentation,
    transform_keypoints,
)
from ..utils import to_device, to_network_layout
from .aligners import build_aligner
from .compilation import check_compile_mode, check_compile_support, compiled
from .frozen_backbone import AUTOCAST_DTYPES
from .image_space import ImageSpaceInference
from .keypoint_sources import build_keypoint_source
from .mask_targets import choose_persons, mask_loss, padded_gt_masks, sample_masks_into_windows
from .persons import gather_persons
from .seg_module import build_pose2seg_head
from .skeleton_features import build_skeleton_features
from .training_keypoints import build_training_keypoint_noise

__all__ = ["Pose2Seg"]


@META_ARCH_REGISTRY.register()
class Pose2Seg(ImageSpaceInference, nn.Module):
    """
    Pose-based, detection-free human instance segmentation (docs/method.md §2): one mask per given
    skeleton. The backbone's ``in_feature`` map is sampled into a window per person by the
    aligner, skeleton channels are added, and the head predicts the mask in the window, which is
    warped back into the image at inference.
    """

    input_kind = "keypoints"  # persons' keypoints as input (Pose2SegTrainer's dataset mapper)
    # the backbone's features are in the input images' frame (feature pixel j centered at input
    # stride * (j + 0.5)): a keypoint source may read them (reads_backbone_features)
    shares_features_with_keypoint_source = True

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
        channels_last=False,
        autocast="",
        compile_mode="",
        test_persons_per_chunk=32,
        training_keypoint_noise=None,
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
            channels_last (bool): run the backbone and the head channels-last on CUDA too
                (always on the CPU).
            autocast (str): "", "bf16" or "fp16": at inference on CUDA, run the backbone and
                the head under ``torch.autocast`` in that dtype.
            compile_mode (str): "" or a mode of :data:`COMPILE_MODES`: at inference, the
                geometry before and after the head runs through ``torch.compile``
                (:meth:`_window_inputs`, :meth:`_rank_and_plan`; the warp-back of the masks
                into the images stays eager).
            test_persons_per_chunk (int): at inference, the head and the warp-back take this
                many persons at a time (0: all at once), so that a crowd's memory stays bounded.
            training_keypoint_noise (callable or None): in training, list[Instances] -> the
                keypoints given to the model per image (:class:`TrainingKeypointNoise`); None:
                the ground truth.
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
        if not 0.0 < mask_threshold <= 1.0:
            raise ValueError(f"MODEL.POSE2SEG.MASK_THRESHOLD must be in (0, 1], got {mask_threshold}")
        if autocast not in AUTOCAST_DTYPES:
            raise ValueError(f"MODEL.POSE2SEG.AUTOCAST must be one of {sorted(AUTOCAST_DTYPES)}, got {autocast!r}")
        self.autocast_dtype = AUTOCAST_DTYPES[autocast]
        self.channels_last = bool(channels_last)
        self.compile_mode = check_compile_mode(compile_mode)
        if test_persons_per_chunk < 0:
            raise ValueError(f"MODEL.POSE2SEG.TEST_PERSONS_PER_CHUNK must be >= 0, got {test_persons_per_chunk}")
        self.test_persons_per_chunk = int(test_persons_per_chunk)
        self.training_keypoint_noise = training_keypoint_noise
        if self.channels_last:
            # weights in the activations' layout: no per-call weight conversion in the convs
            self.backbone.to(memory_format=torch.channels_last)
            self.head.to(memory_format=torch.channels_last)
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
        check_compile_support(p.COMPILE, cfg.MODEL.DEVICE)
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
            "channels_last": p.CHANNELS_LAST,
            "autocast": p.AUTOCAST,
            "compile_mode": p.COMPILE,
            "test_persons_per_chunk": p.TEST_PERSONS_PER_CHUNK,
            "training_keypoint_noise": build_training_keypoint_noise(cfg),
        }

    @property
    def device(self):
        return self.pixel_mean.device

    def preprocess_image(self, batched_inputs):
        images = [
            (to_device(x["image"], self.device) - self.pixel_mean) / self.pixel_std for x in batched_inputs
        ]
        images = ImageList.from_tensors(
            images, self.backbone.size_divisibility, padding_constraints=self.backbone.padding_constraints
        )
        return ImageList(to_network_layout(images.tensor, self.channels_last), images.image_sizes)

    def _autocast(self):
        """MODEL.POSE2SEG.AUTOCAST around the backbone and the head, at inference on CUDA."""
        if self.autocast_dtype is None or self.training or self.device.type != "cuda":
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=self.autocast_dtype)

    # ------------------------------------------------------------------ shared
    def _persons(self, keypoints_per_image, scores_per_image, image_sizes, output_sizes=None):
        """All persons of the batch on the device, in image order (:func:`gather_persons`)."""
        output_sizes = image_sizes if output_sizes is None else output_sizes
        frames = self._feature_frames(image_sizes)
        return gather_persons(keypoints_per_image, scores_per_image, frames, image_sizes, output_sizes, self.device)

    def _feature_frames(self, image_sizes):
        """
        Where each image lies in the feature map, on the host.

        Args:
            image_sizes (list[tuple[int, int]]): (height, width) of the B input images.

        Returns:
            tuple: ``feature_from_input`` (B, 3, 3) float64, input-image continuous coordinates
            -> feature-map pixels (:func:`feature_from_input_matrix`), and the (B, 2) float64
            (height, width) of each image's valid, unpadded part of the feature map.
        """
        feature_from_input = feature_from_input_matrix(self.stride).expand(len(image_sizes), 3, 3)
        # ceil(h / stride) with non-negative integers: a traced graph's sizes stay integer
        # expressions, and ONNX's integer division (which truncates) gives the same
        stride = self.stride
        sizes = [((h + stride - 1) // stride, (w + stride - 1) // stride) for h, w in image_sizes]
        return feature_from_input, torch.tensor(sizes, dtype=torch.float64).reshape(-1, 2)

    def _compiled(self, function):
        """``function`` (a plain function, or an unbound method called with ``self``) as the
        inference runs it: compiled per MODEL.POSE2SEG.COMPILE, eager in training."""
        return function if self.training else compiled(function, self.compile_mode)

    def _window_logits(self, features, keypoints, batch_index, feature_from_input, feature_sizes):
        """
        Returns:
            logits (N, C, h, w) and the (N, 3, 3) float64 matrices input-image continuous
            coordinates -> window pixels.
        """
        window_inputs = self._compiled(type(self)._window_inputs)
        inputs, window_from_input = window_inputs(
            self, features, keypoints, batch_index, feature_from_input, feature_sizes
        )
        with self._autocast():
            logits = self.head(inputs)
        return logits, window_from_input

    def _chunked_window_logits(self, features, keypoints, batch_index, feature_from_input, feature_sizes):
        """:meth:`_window_logits` of TEST_PERSONS_PER_CHUNK persons at a time (N > 0): the
        head's activations are held for one chunk; its (N, C, h, w) logits are kept for all."""
        size = self.test_persons_per_chunk or len(keypoints)
        chunks = [
            self._window_logits(features, keypoints[c], batch_index[c], feature_from_input[c], feature_sizes[c])
            for c in (slice(start, start + size) for start in range(0, len(keypoints), size))
        ]
        if len(chunks) == 1:
            return chunks[0]
        return tuple(torch.cat(parts) for parts in zip(*chunks))

    def _window_inputs(self, features, keypoints, batch_index, feature_from_input, feature_sizes):
        """
        The head's inputs: each person's window of ``features`` (affine-align) and its skeleton
        channels.

        Args:
            features (Tensor): (B, C, H, W) the backbone's ``in_feature``.
            keypoints (Tensor): (N, 17, 3) input-image continuous coordinates.
            batch_index (Tensor): (N,) long, each person's image.
            feature_from_input, feature_sizes (Tensor): (N, 3, 3) and (N, 2) float64, as
                :class:`Persons` holds them.

        Returns:
            the head's inputs (N, C + S, h, w) and the (N, 3, 3) float64 matrices input-image
            continuous coordinates -> window pixels.
        """
        window_from_feature = self._align(keypoints, feature_from_input, feature_sizes)
        window_from_input = window_from_feature @ feature_from_input
        window_keypoints = transform_keypoints(keypoints, window_from_input)
        skeleton = self.skeleton(window_keypoints, self.window_size)
        sampling = self._sampling_matrices(window_from_feature, tuple(features.shape[-2:]))
        # batch_index is built by _persons, in range: no check (it would read it on the host)
        aligned = affine_align(features, sampling, batch_index, self.window_size, check_batch_index=False)
        # aligned has channels-last strides; where the head runs channels-last, the skeleton
        # channels take the same layout so that the concatenation needs no conversion
        skeleton = to_network_layout(skeleton.to(aligned.dtype), self.channels_last)
        return torch.cat([aligned, skeleton], dim=1), window_from_input

    def _align(self, keypoints, feature_from_input, feature_sizes):
        """(N, 3, 3) float64 feature-map pixels -> window pixels: the aligner's matrices, and in
        training the window augmentation on top."""
        feature_keypoints = transform_keypoints(keypoints, feature_from_input)
        matrices = self.aligner(feature_keypoints, feature_sizes).to(torch.float64)
        if self.training and self.augmentation is not None:
            a = self.augmentation
            jitter = random_window_augmentation(
                len(matrices), self.window_size, a["angle"], a["scale"], a["translate"], device=self.device
            )
            matrices = jitter @ matrices
        return matrices

    def _sampling_matrices(self, window_from_feature, feature_size):
        """
        The matrices :func:`affine_align` samples the windows with: ``window_from_feature``
        itself (bilinear, pixel centers at integers).

        Args:
            window_from_feature (Tensor): (N, 3, 3) float64 feature-map pixels -> window pixels.
            feature_size (tuple[int, int]): (H, W) of the whole (padded) feature map.
        """
        return window_from_feature

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
        instances = [x["instances"] for x in batched_inputs]
        chosen = choose_persons([len(i.gt_keypoints) for i in instances], self.max_instances_per_batch)
        if not any(len(c) for c in chosen):
            # no person in the batch: a zero loss that still reaches every parameter
            zero = features.sum() * 0.0 + sum(p.sum() * 0.0 for p in self.head.parameters())
            return {"loss_mask": zero + unused}

        given = [i.gt_keypoints.tensor for i in instances]
        if self.training_keypoint_noise is not None:
            given = self.training_keypoint_noise(instances)  # the masks stay the true ones
        keypoints = [k[c] for k, c in zip(given, chosen)]
        persons = self._persons(keypoints, [torch.ones(len(c)) for c in chosen], images.image_sizes)
        logits, window_from_input = self._window_logits(
            features, persons.keypoints, persons.batch_index, persons.feature_from_input, persons.feature_sizes
        )
        masks = padded_gt_masks(instances, chosen, images.image_sizes, self._mask_canvas_size(images), self.device)
        window_from_pixel = window_from_input @ continuous_from_pixel_matrices(window_from_input.new_ones(1, 2))
        targets = sample_masks_into_windows(masks, window_from_pixel, self.window_size)
        return {"loss_mask": mask_loss(logits, targets) + unused}

    def _mask_canvas_size(self, images):
        """(H, W) the ground-truth masks are padded to: the padded batch's, as the windows map
        input coordinates."""
        return tuple(images.tensor.shape[-2:])

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
            :meth:`PoseTemplates.fit`), so the outputs are finite for any keypoints. All
            tensors are on the model's device.

        All persons of the batch are processed together, as tensors on the device (the head and
        the warp-back TEST_PERSONS_PER_CHUNK at a time; the ranking over all); the outputs
        are split per image at the end, by the numbers of persons the host knows from the
        keypoint source. The host reads one thing from the device (the crops' sizes for the
        warp-back, :func:`read_crop_sizes`) whatever the number of persons and images,
        when the keypoint source keeps its persons on the host ("gt", "json").
        """
        assert not self.training
        features, persons, output_sizes = self._features_and_persons(batched_inputs, do_postprocess)
        num = len(persons.keypoints)
        if num:
            logits, window_from_input = self._chunked_window_logits(
                features, persons.keypoints, persons.batch_index, persons.feature_from_input, persons.feature_sizes
            )
            rank_and_plan = self._compiled(type(self)._rank_and_plan)
            scores, probabilities, keypoints, window_from_output, footprints, extents = rank_and_plan(
                self, logits, persons.scores, persons.keypoints, persons.batch_index,
                persons.input_sizes, persons.output_sizes, window_from_input, len(output_sizes),
            )  # fmt: skip
            crops = read_crop_sizes(extents)  # the call's one synchronization
            # eager: compiled, the crops' sampling and scatter ran 1.3-2x slower on the CPU
            pasted = paste_masks_in_crops(
                probabilities, window_from_output, footprints, output_sizes, persons.counts, crops,
                self.mask_threshold, self.test_persons_per_chunk,
            )  # fmt: skip
        else:
            scores, keypoints = persons.scores, persons.keypoints  # empty
            pasted = [
                (torch.zeros(0, h, w, dtype=torch.bool, device=self.device), torch.zeros(0, 4, device=self.device))
                for h, w in output_sizes
            ]
        return self._results(output_sizes, persons.counts, pasted, scores, keypoints)

    def _features_and_persons(self, batched_inputs, do_postprocess, persons_per_image=None):
        """
        What inference starts from: the backbone's ``in_feature`` of the inputs, their persons
        (the keypoint source's, or ``persons_per_image``: per image, (keypoints (n, 17, 3) in
        the input image's continuous coordinates, person scores (n,)), as a source gives them)
        as :class:`Persons`, and each image's output (height, width).
        """
        images = self.preprocess_image(batched_inputs)
        with self._autocast():
            all_features = self.backbone(images.tensor)
        features = all_features[self.in_feature]
        if persons_per_image is None:
            persons_per_image = self._source_persons(batched_inputs, images.image_sizes, all_features)
        output_sizes = [
            (x.get("height", h), x.get("width", w)) if do_postprocess else (h, w)
            for x, (h, w) in zip(batched_inputs, images.image_sizes)
        ]
        keypoints, scores = [k for k, _ in persons_per_image], [s for _, s in persons_per_image]
        return features, self._persons(keypoints, scores, images.image_sizes, output_sizes), output_sizes

    def keypoint_persons(self, batched_inputs):
        """
        The keypoint source's persons of ``batched_inputs``: per image, (keypoints (n, 17, 3) in
        the input image's continuous coordinates, person scores (n,)), with a backbone pass of
        its own where the source reads this model's features (test-time augmentation takes its
        persons from here).
        """
        images = self.preprocess_image(batched_inputs)
        all_features = None
        if getattr(self.keypoint_source, "reads_backbone_features", False) and self.shares_features_with_keypoint_source:
            with self._autocast():
                all_features = self.backbone(images.tensor)
        return self._source_persons(batched_inputs, images.image_sizes, all_features)

    def _source_persons(self, batched_inputs, image_sizes, all_features):
        """The keypoint source's persons; a source that reads backbone features is given this
        model's (one backbone pass from image to masks), where they are in the input frame."""
        if not getattr(self.keypoint_source, "reads_backbone_features", False):
            return self.keypoint_source(batched_inputs, image_sizes, self.device)
        shared = self.shares_features_with_keypoint_source
        return self.keypoint_source(
            batched_inputs, image_sizes, self.device,
            features=all_features if shared else None, backbone=self.backbone if shared else None,
        )  # fmt: skip
