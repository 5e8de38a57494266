"""
Backbone pretraining without instances: person/background and keypoint heatmaps.

The paper gives every compared model the same ImageNet-pretrained backbone. Without
downloads, this project's stand-in is a backbone pretrained on the synthetic train split with
a *semantic* task: which pixels show a person (any person), and where keypoints are (heatmaps
with all persons merged). Neither target separates one person from another, so the task is
not instance segmentation; the backbone learns to see persons and joints, which Mask R-CNN,
Keypoint R-CNN and Pose2Seg all need. ``tools/pretrain_backbone.py`` trains it and exports the
backbone's weights.
"""
import torch
import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY, build_backbone
from detectron2.structures import ImageList
from torch import nn

from ..pose.keypoints import NUM_KEYPOINTS

__all__ = ["DenseHumanPretraining", "person_targets", "keypoint_heatmaps"]


def person_targets(union, stride):
    """
    Person/background targets at a feature level.

    Args:
        union (Tensor): (B, H, W) float, 1 where any person of the image is (padded input size).
        stride (int): the level's stride.

    Returns:
        Tensor (B, ceil(H / stride), ceil(W / stride)) float32: the fraction of each feature
        pixel's stride x stride input block (clipped to the input) that shows a person.
    """
    return F.avg_pool2d(union[:, None].float(), stride, ceil_mode=True)[:, 0]


def keypoint_heatmaps(keypoints, batch_index, batch_size, size, stride, sigma):
    """
    Keypoint heatmaps at a feature level, the persons of each image merged by maximum.

    Args:
        keypoints (Tensor): (P, K, 3) of all persons of the batch in input-image continuous
            coordinates (pixel i spans [i, i + 1]); v > 0 means labeled.
        batch_index (Tensor): (P,) long, the image of each person.
        batch_size (int): B.
        size (tuple[int, int]): (h, w) of the feature map.
        stride (int): feature pixel j covers input [stride * j, stride * (j + 1)), its center at
            stride * (j + 0.5).
        sigma (float): the Gaussians' standard deviation in feature pixels.

    Returns:
        Tensor (B, K, h, w) float32 in [0, 1]: exp(-d^2 / (2 sigma^2)) around each labeled
        keypoint, d in feature pixels; 0 where no keypoint of that type is labeled.
    """
    h, w = size
    k = keypoints.shape[1]
    out = keypoints.new_zeros((batch_size, k, h, w), dtype=torch.float32)
    if len(keypoints) == 0:
        return out
    xy = keypoints[..., :2].to(torch.float32) / stride - 0.5  # feature pixel coordinates
    labeled = (keypoints[..., 2] > 0) & torch.isfinite(xy).all(dim=-1)
    xy = torch.where(labeled[..., None], xy, torch.zeros_like(xy))
    xs = torch.arange(w, dtype=torch.float32, device=keypoints.device)
    ys = torch.arange(h, dtype=torch.float32, device=keypoints.device)
    gx = torch.exp(-((xs - xy[..., 0, None]) ** 2) / (2 * sigma**2))  # (P, K, w)
    gy = torch.exp(-((ys - xy[..., 1, None]) ** 2) / (2 * sigma**2)) * labeled[..., None]  # (P, K, h)
    return out.index_reduce_(0, batch_index, gy[..., :, None] * gx[..., None, :], "amax")


def _fit(target, size):
    """Crop or zero-pad (B, h, w) targets to ``size`` (a coarse level can be one pixel larger
    than the padded input divided by its stride)."""
    h, w = size
    target = target[:, :h, :w]
    return F.pad(target, (0, w - target.shape[2], 0, h - target.shape[1]))


@META_ARCH_REGISTRY.register()
class DenseHumanPretraining(nn.Module):
    """
    A backbone and one small convolutional head shared by its output levels, which predicts
    at every level 1 + K maps: person/background logits and K keypoint heatmap logits (binary
    cross-entropy on each; heatmap pixels weighted by 1 + KEYPOINT_POSITIVE_WEIGHT x target,
    since keypoints cover few pixels). Supervising every level trains every FPN output conv
    that Mask R-CNN's RPN and ROI heads use.

    Training inputs are :class:`~pose2seg_d2.data.DensePretrainingMapper`'s (``image``,
    ``person_mask``, ``keypoints``). At inference it returns ``{"sem_seg": (1 + K, H, W)}``
    probabilities of the finest level, upsampled to the output size.
    """

    input_kind = "dense"  # person masks and keypoint heatmap targets (Pose2SegTrainer's dataset mapper)

    @configurable
    def __init__(
        self,
        *,
        backbone,
        in_features,
        head_channels,
        num_keypoints=NUM_KEYPOINTS,
        keypoint_sigma=6.0,
        keypoint_loss_weight=1.0,
        keypoint_positive_weight=9.0,
        pixel_mean,
        pixel_std,
    ):
        """
        Args:
            backbone (Backbone): must output ``in_features``, all with the same channels.
            in_features (list[str]): the supervised levels, finest first.
            head_channels (int): width of the head's hidden convolutions.
            keypoint_sigma (float): heatmap standard deviation in input pixels (at least 0.75
                feature pixels at every level).
        """
        super().__init__()
        self.backbone = backbone
        self.in_features = list(in_features)
        shapes = backbone.output_shape()
        missing = [f for f in self.in_features if f not in shapes]
        if missing:
            raise ValueError(f"MODEL.DENSE_PRETRAINING.IN_FEATURES {missing} are not backbone outputs ({sorted(shapes)})")
        channels = {shapes[f].channels for f in self.in_features}
        if len(channels) != 1:
            raise ValueError(f"the pretraining head is shared by the levels, which need equal channels; got {channels}")
        self.strides = [shapes[f].stride for f in self.in_features]
        c = channels.pop()
        self.head = nn.Sequential(
            nn.Conv2d(c, head_channels, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(head_channels, head_channels, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(head_channels, 1 + num_keypoints, 1),
        )
        self.num_keypoints = num_keypoints
        self.keypoint_sigma = keypoint_sigma
        self.keypoint_loss_weight = keypoint_loss_weight
        self.keypoint_positive_weight = keypoint_positive_weight
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), False)

    @classmethod
    def from_config(cls, cfg):
        p = cfg.MODEL.DENSE_PRETRAINING
        return {
            "backbone": build_backbone(cfg),
            "in_features": p.IN_FEATURES,
            "head_channels": p.HEAD_CHANNELS,
            "num_keypoints": cfg.MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS,
            "keypoint_sigma": p.KEYPOINT_SIGMA,
            "keypoint_loss_weight": p.KEYPOINT_LOSS_WEIGHT,
            "keypoint_positive_weight": p.KEYPOINT_POSITIVE_WEIGHT,
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
        }

    @property
    def device(self):
        return self.pixel_mean.device

    def _images(self, batched_inputs):
        images = [(x["image"].to(self.device) - self.pixel_mean) / self.pixel_std for x in batched_inputs]
        return ImageList.from_tensors(
            images, self.backbone.size_divisibility, padding_constraints=self.backbone.padding_constraints
        )

    def forward(self, batched_inputs):
        images = self._images(batched_inputs)
        features = self.backbone(images.tensor)
        logits = [self.head(features[f]) for f in self.in_features]
        if not self.training:
            return self._inference(logits[0], images, batched_inputs)
        # unused backbone outputs stay in the graph, as DistributedDataParallel requires
        unused = sum(f.sum() for name, f in features.items() if name not in self.in_features) * 0.0
        union, keypoints, batch_index = self._targets(batched_inputs, images)
        person_loss, keypoint_loss = 0.0, 0.0
        for level_logits, stride in zip(logits, self.strides):
            size = level_logits.shape[-2:]
            sigma = max(self.keypoint_sigma / stride, 0.75)
            person = _fit(person_targets(union, stride), size)
            heat = keypoint_heatmaps(keypoints, batch_index, len(union), size, stride, sigma)
            level_logits = level_logits.float()
            person_loss = person_loss + F.binary_cross_entropy_with_logits(level_logits[:, 0], person)
            weight = 1.0 + self.keypoint_positive_weight * heat
            keypoint_loss = keypoint_loss + F.binary_cross_entropy_with_logits(level_logits[:, 1:], heat, weight=weight)
        n = len(self.in_features)
        return {
            "loss_person": person_loss / n + unused,
            "loss_keypoint_heatmaps": self.keypoint_loss_weight * keypoint_loss / n,
        }

    def _targets(self, batched_inputs, images):
        """(B, H, W) union of the persons' masks at the padded size; all persons' keypoints
        (P, K, 3) and their image index (P,)."""
        height, width = images.tensor.shape[-2:]
        union = torch.zeros(len(batched_inputs), height, width, device=self.device)
        for i, x in enumerate(batched_inputs):
            m = x["person_mask"]
            union[i, : m.shape[0], : m.shape[1]] = m.to(self.device)
        keypoints = torch.cat([x["keypoints"].reshape(-1, self.num_keypoints, 3) for x in batched_inputs])
        counts = torch.tensor([len(x["keypoints"]) for x in batched_inputs])
        batch_index = torch.repeat_interleave(torch.arange(len(counts)), counts)
        return union, keypoints.to(self.device), batch_index.to(self.device)

    def _inference(self, logits, images, batched_inputs):
        results = []
        for i, (x, (h, w)) in enumerate(zip(batched_inputs, images.image_sizes)):
            stride = self.strides[0]
            prob = logits[i : i + 1, :, : -(-h // stride), : -(-w // stride)].sigmoid()
            prob = F.interpolate(prob, scale_factor=stride, mode="bilinear", align_corners=False)[..., :h, :w]
            out_size = (x.get("height", h), x.get("width", w))
            results.append({"sem_seg": F.interpolate(prob, size=out_size, mode="bilinear", align_corners=False)[0]})
        return results
