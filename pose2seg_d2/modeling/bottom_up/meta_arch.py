"""BottomUpKeypoints: a backbone and the bottom-up keypoint head, as a Detectron2 meta-architecture."""
import torch
from detectron2.config import configurable
from detectron2.data import MetadataCatalog
from detectron2.modeling import META_ARCH_REGISTRY, build_backbone
from detectron2.structures import Boxes, ImageList, Instances
from torch import nn

from ...utils import to_device
from .decoding import decode_persons, default_joint_order
from .head import build_bottom_up_head
from .losses import heatmap_focal_loss, heatmap_loss, tag_losses, values_at_joints, visibility_loss
from .targets import heatmap_targets, joint_pixels, visibility_targets

__all__ = ["BottomUpKeypoints", "check_bottom_up_options", "keypoint_boxes"]


def check_bottom_up_options(cfg):
    """
    Raise a ValueError naming the option when cfg.MODEL.BOTTOM_UP does not fit the data or
    itself: NUM_KEYPOINTS against the keypoint_names of the datasets of DATASETS.TRAIN and
    DATASETS.TEST that declare them and against TEST.KEYPOINT_OKS_SIGMAS (when given);
    JOINT_ORDER a permutation of the joints; the thresholds and sizes in range.
    """
    b = cfg.MODEL.BOTTOM_UP
    k = b.NUM_KEYPOINTS
    if k < 1:
        raise ValueError(f"MODEL.BOTTOM_UP.NUM_KEYPOINTS must be >= 1, got {k}")
    for name in list(cfg.DATASETS.TRAIN) + list(cfg.DATASETS.TEST):
        names = MetadataCatalog.get(name).get("keypoint_names")
        if names is not None and len(names) != k:
            raise ValueError(
                f"MODEL.BOTTOM_UP.NUM_KEYPOINTS is {k}, but dataset {name!r} has {len(names)} keypoints "
                f"({', '.join(list(names)[:4])}, ...): set MODEL.BOTTOM_UP.NUM_KEYPOINTS {len(names)}"
            )
    sigmas = cfg.TEST.KEYPOINT_OKS_SIGMAS
    if len(sigmas) and len(sigmas) != k:
        raise ValueError(
            f"MODEL.BOTTOM_UP.NUM_KEYPOINTS is {k}, but TEST.KEYPOINT_OKS_SIGMAS has {len(sigmas)} values"
        )
    order = list(b.JOINT_ORDER)
    if order and sorted(order) != list(range(k)):
        raise ValueError(
            f"MODEL.BOTTOM_UP.JOINT_ORDER must hold each of the {k} joints (0..{k - 1}) once "
            f"(MODEL.BOTTOM_UP.NUM_KEYPOINTS), got {order}"
        )
    for option, value in (
        ("TAG_DIM", b.TAG_DIM), ("MAX_PERSONS", b.MAX_PERSONS),
    ):  # fmt: skip
        if value < 1:
            raise ValueError(f"MODEL.BOTTOM_UP.{option} must be >= 1, got {value}")
    for option, value in (
        ("HEATMAP_SIGMA", b.HEATMAP_SIGMA), ("PUSH_SIGMA", b.PUSH_SIGMA),
        ("DETECTION_THRESHOLD", b.DETECTION_THRESHOLD), ("TAG_THRESHOLD", b.TAG_THRESHOLD),
    ):  # fmt: skip
        if not value > 0:
            raise ValueError(f"MODEL.BOTTOM_UP.{option} must be > 0, got {value}")


def keypoint_boxes(keypoints):
    """
    Args:
        keypoints (Tensor): (N, K, 3) of (x, y, score), score 0 for a joint not found.

    Returns:
        Tensor (N, 4) float32: the (x0, y0, x1, y1) box of each person's found joints (zeros
        for a person without any).
    """
    found = keypoints[..., 2] > 0
    big = torch.finfo(torch.float32).max
    xy = keypoints[..., :2].to(torch.float32)
    low = torch.where(found[..., None], xy, big).amin(dim=1)
    high = torch.where(found[..., None], xy, -big).amax(dim=1)
    any_found = found.any(dim=1, keepdim=True)
    return torch.where(any_found, torch.cat([low, high], dim=1), 0.0)


@META_ARCH_REGISTRY.register()
class BottomUpKeypoints(nn.Module):
    """
    A bottom-up, Associative-Embedding keypoint estimator (docs/method.md §7): the head
    (BOTTOM_UP_HEAD_REGISTRY) reads one backbone level and predicts per joint type a heatmap,
    a tag map and visibility logits; training regresses the heatmaps, pulls each person's tags
    together and pushes persons' tags apart, and learns each labeled joint's visibility;
    inference groups heatmap peaks into persons by tag (:func:`decode_persons`).

    Training inputs are Detectron2's (``instances.gt_keypoints``; MODEL.KEYPOINT_ON makes its
    mapper load them). Inference returns per image ``Instances`` with ``pred_keypoints``
    (N, K, 3) of (x, y, score), ``pred_keypoint_visibility`` (N, K), ``scores``, ``pred_boxes``
    (the found joints' box) and ``pred_classes`` (0, person), which Detectron2's COCOEvaluator
    scores by keypoint AP (:meth:`build_evaluator`).
    """

    input_kind = "images"  # Detectron2's mapper, with keypoints (Pose2SegTrainer)

    @configurable
    def __init__(
        self,
        *,
        backbone,
        head,
        in_feature,
        pixel_mean,
        pixel_std,
        heatmap_sigma=2.0,
        heatmap_loss="mse",
        heatmap_positive_weight=0.0,
        heatmap_loss_weight=1.0,
        pull_loss_weight=1e-3,
        push_loss_weight=1e-3,
        push_sigma=1.0,
        visibility_loss_weight=1e-2,
        visibility_covered_weight=1.0,
        max_persons=30,
        detection_threshold=0.1,
        tag_threshold=1.0,
        joint_order=None,
        refine=True,
        detections_per_image=100,
    ):
        """
        Args:
            backbone (Backbone): must output ``in_feature``.
            head (nn.Module): a BOTTOM_UP_HEAD_REGISTRY head for that feature map.
            in_feature (str): the backbone output the head reads.
            pixel_mean, pixel_std (tuple[float]): input normalization.
            heatmap_sigma (float): the targets' Gaussians, in feature pixels.
            heatmap_loss (str): "mse" (the heatmaps regressed as they are, the paper's) or
                "focal" (the heatmaps are logits, :func:`heatmap_focal_loss`; their sigmoid is
                decoded).
            heatmap_positive_weight, heatmap_loss_weight, pull_loss_weight, push_loss_weight,
            push_sigma, visibility_loss_weight, visibility_covered_weight (float): the losses
                (:mod:`.losses`).
            max_persons, detection_threshold, tag_threshold, joint_order, refine: decoding
                (:func:`decode_persons`); ``joint_order`` None is :func:`default_joint_order`.
            detections_per_image (int): at most this many persons per image, the best scoring.
        """
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.in_feature = in_feature
        shapes = backbone.output_shape()
        if in_feature not in shapes:
            raise ValueError(f"MODEL.BOTTOM_UP.IN_FEATURE={in_feature!r} is not a backbone output ({sorted(shapes)})")
        self.stride = shapes[in_feature].stride
        self.num_keypoints = head.num_keypoints
        self.heatmap_sigma = heatmap_sigma
        if heatmap_loss not in ("mse", "focal"):
            raise ValueError(f"MODEL.BOTTOM_UP.HEATMAP_LOSS must be 'mse' or 'focal', got {heatmap_loss!r}")
        self.heatmap_loss = heatmap_loss
        if heatmap_loss == "focal" and hasattr(head, "set_heatmap_prior"):
            head.set_heatmap_prior(0.1)
        self.loss_options = {
            "heatmap_positive_weight": heatmap_positive_weight,
            "heatmap": heatmap_loss_weight,
            "pull": pull_loss_weight,
            "push": push_loss_weight,
            "push_sigma": push_sigma,
            "visibility": visibility_loss_weight,
            "visibility_covered": visibility_covered_weight,
        }
        self.decoding = {
            "max_persons": int(max_persons),
            "detection_threshold": float(detection_threshold),
            "tag_threshold": float(tag_threshold),
            "joint_order": tuple(joint_order) if joint_order else default_joint_order(self.num_keypoints),
            "refine": bool(refine),
        }
        self.detections_per_image = int(detections_per_image)
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), False)

    @classmethod
    def from_config(cls, cfg):
        check_bottom_up_options(cfg)
        b = cfg.MODEL.BOTTOM_UP
        backbone = build_backbone(cfg)
        shapes = backbone.output_shape()
        if b.IN_FEATURE not in shapes:
            raise ValueError(f"MODEL.BOTTOM_UP.IN_FEATURE={b.IN_FEATURE!r} is not a backbone output ({sorted(shapes)})")
        head = build_bottom_up_head(cfg, shapes[b.IN_FEATURE])
        if head.num_keypoints != b.NUM_KEYPOINTS:
            raise ValueError(
                f"MODEL.BOTTOM_UP.HEAD_NAME {b.HEAD_NAME!r} predicts {head.num_keypoints} joints, "
                f"MODEL.BOTTOM_UP.NUM_KEYPOINTS is {b.NUM_KEYPOINTS}"
            )
        return {
            "backbone": backbone,
            "head": head,
            "in_feature": b.IN_FEATURE,
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
            "heatmap_sigma": b.HEATMAP_SIGMA,
            "heatmap_loss": b.HEATMAP_LOSS,
            "heatmap_positive_weight": b.HEATMAP_POSITIVE_WEIGHT,
            "heatmap_loss_weight": b.HEATMAP_LOSS_WEIGHT,
            "pull_loss_weight": b.PULL_LOSS_WEIGHT,
            "push_loss_weight": b.PUSH_LOSS_WEIGHT,
            "push_sigma": b.PUSH_SIGMA,
            "visibility_loss_weight": b.VISIBILITY_LOSS_WEIGHT,
            "visibility_covered_weight": b.VISIBILITY_COVERED_WEIGHT,
            "max_persons": b.MAX_PERSONS,
            "detection_threshold": b.DETECTION_THRESHOLD,
            "tag_threshold": b.TAG_THRESHOLD,
            "joint_order": list(b.JOINT_ORDER) or None,
            "refine": b.REFINE,
            "detections_per_image": cfg.TEST.DETECTIONS_PER_IMAGE,
        }

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder):
        """COCO keypoint AP, with each result's predicted visibility (Pose2SegTrainer calls it)."""
        from ...evaluation.keypoints import KeypointVisibilityEvaluator

        return KeypointVisibilityEvaluator(
            dataset_name,
            visibility_threshold=cfg.MODEL.BOTTOM_UP.VISIBILITY_THRESHOLD,
            kpt_oks_sigmas=cfg.TEST.KEYPOINT_OKS_SIGMAS,
            distributed=True,
            output_dir=output_folder,
        )

    @property
    def device(self):
        return self.pixel_mean.device

    def preprocess_image(self, batched_inputs):
        images = [(to_device(x["image"], self.device) - self.pixel_mean) / self.pixel_std for x in batched_inputs]
        return ImageList.from_tensors(
            images, self.backbone.size_divisibility, padding_constraints=self.backbone.padding_constraints
        )

    def forward(self, batched_inputs):
        """
        Args:
            batched_inputs (list[dict]): Detectron2's inputs (``image``; in training
                ``instances`` with ``gt_keypoints``; ``height``/``width`` for the output size).

        Returns:
            dict of losses in training (``loss_heatmap``, ``loss_pull``, ``loss_push``,
            ``loss_visibility``); otherwise list[dict] with ``instances`` (see the class).
        """
        if not self.training:
            return self.inference(batched_inputs)
        images = self.preprocess_image(batched_inputs)
        all_features = self.backbone(images.tensor)
        # unused backbone outputs stay in the graph, as DistributedDataParallel requires
        unused = sum(f.sum() for name, f in all_features.items() if name != self.in_feature) * 0.0
        outputs = self.head(all_features[self.in_feature])
        losses = self.losses(outputs, [x["instances"] for x in batched_inputs])
        losses["loss_heatmap"] = losses["loss_heatmap"] + unused
        return losses

    def losses(self, outputs, instances):
        """
        Args:
            outputs (dict): the head's maps for B images.
            instances (list[Instances]): per image, ``gt_keypoints`` (n, K, 3) in input-image
                continuous coordinates (absent or empty for an image without persons).

        Returns:
            dict[str, Tensor]: the four weighted losses.
        """
        heatmaps = outputs["heatmaps"]
        b, k, h, w = heatmaps.shape
        device = heatmaps.device
        keypoints = torch.cat(
            [
                i.gt_keypoints.tensor.reshape(-1, k, 3).to(device, torch.float32)
                if i.has("gt_keypoints")
                else torch.zeros(0, k, 3, device=device)
                for i in instances
            ]
        )
        counts = torch.tensor([len(i.gt_keypoints) if i.has("gt_keypoints") else 0 for i in instances])
        batch_index = torch.repeat_interleave(torch.arange(b), counts).to(device)
        o = self.loss_options
        target = heatmap_targets(keypoints, batch_index, b, (h, w), self.stride, self.heatmap_sigma)
        joint_index, usable = joint_pixels(keypoints, (h, w), self.stride)
        tags = values_at_joints(outputs["tags"], batch_index, joint_index)
        pull, push = tag_losses(tags, usable, batch_index, b, o["push_sigma"])
        logits = values_at_joints(outputs["visibility_logits"][:, :, None], batch_index, joint_index)[..., 0]
        visibility = visibility_loss(logits, visibility_targets(keypoints), usable, o.get("visibility_covered", 1.0))
        # every output stays in the graph when the batch holds no person
        zero = sum(v.sum() for v in outputs.values()) * 0.0
        if self.heatmap_loss == "focal":
            heatmap = heatmap_focal_loss(heatmaps, target, batch_index, joint_index, usable)
        else:
            heatmap = heatmap_loss(heatmaps, target, o["heatmap_positive_weight"])
        return {
            "loss_heatmap": o["heatmap"] * heatmap,
            "loss_pull": o["pull"] * pull + zero,
            "loss_push": o["push"] * push + zero,
            "loss_visibility": o["visibility"] * visibility + zero,
        }

    def predict_from_features(self, features, image_sizes):
        """
        Persons from backbone features: the head, then :func:`decode_persons`.

        Args:
            features (dict[str, Tensor]): backbone outputs, ``in_feature`` among them, of
                images padded into one batch.
            image_sizes (list[tuple[int, int]]): (height, width) of each input image.

        Returns:
            list[dict]: per image, on the host, ``keypoints`` (P, K, 3) of (x, y, score) in its
            input-image continuous coordinates, ``visibility`` (P, K), ``scores`` (P,); at most
            ``detections_per_image`` persons, best first.
        """
        if self.in_feature not in features:
            raise ValueError(
                f"MODEL.BOTTOM_UP.IN_FEATURE={self.in_feature!r} is not among the backbone outputs ({sorted(features)})"
            )
        outputs = self.head(features[self.in_feature].to(torch.float32))
        if self.heatmap_loss == "focal":
            outputs = dict(outputs, heatmaps=outputs["heatmaps"].sigmoid())
        sizes = [(int(h), int(w)) for h, w in image_sizes]
        persons = decode_persons(outputs, sizes, self.stride, **self.decoding)
        return [{name: value[: self.detections_per_image] for name, value in p.items()} for p in persons]

    @torch.no_grad()
    def inference(self, batched_inputs):
        """
        Returns:
            list[dict]: ``{"instances": Instances}`` per image at the ``height`` x ``width`` of
            its input dict (the input image's size without them), on the model's device.
        """
        images = self.preprocess_image(batched_inputs)
        features = self.backbone(images.tensor)
        results = []
        per_image = self.predict_from_features(features, images.image_sizes)
        for x, (h, w), persons in zip(batched_inputs, images.image_sizes, per_image):
            out_h, out_w = x.get("height", h), x.get("width", w)
            keypoints = persons["keypoints"].clone()
            keypoints[..., 0] *= out_w / w
            keypoints[..., 1] *= out_h / h
            result = Instances((out_h, out_w))
            result.pred_keypoints = keypoints.to(self.device)
            result.pred_keypoint_visibility = persons["visibility"].to(self.device)
            result.scores = persons["scores"].to(self.device)
            result.pred_boxes = Boxes(keypoint_boxes(keypoints).to(self.device))
            result.pred_classes = torch.zeros(len(keypoints), dtype=torch.long, device=self.device)
            results.append({"instances": result})
        return results
