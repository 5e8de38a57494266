"""The bottom-up keypoint head: per-joint heatmaps, tags and visibility logits on one feature map."""
import math

import torch
from detectron2.config import configurable
from detectron2.layers import Conv2d, ShapeSpec, get_norm
from detectron2.utils.registry import Registry
from torch import nn

__all__ = ["BOTTOM_UP_HEAD_REGISTRY", "AssociativeEmbeddingHead", "build_bottom_up_head", "pixel_positions"]

BOTTOM_UP_HEAD_REGISTRY = Registry("BOTTOM_UP_HEAD")
BOTTOM_UP_HEAD_REGISTRY.__doc__ = """
Registry for the heads of BottomUpKeypoints, chosen by cfg.MODEL.BOTTOM_UP.HEAD_NAME and called
with (cfg, input_shape: ShapeSpec of MODEL.BOTTOM_UP.IN_FEATURE). A head maps the (B, C, H, W)
feature map to a dict of ``heatmaps`` (B, K, H, W), ``tags`` (B, K, D, H, W) and
``visibility_logits`` (B, K, H, W), and has ``num_keypoints`` (K) and ``tag_dim`` (D).
"""


@BOTTOM_UP_HEAD_REGISTRY.register()
class AssociativeEmbeddingHead(nn.Module):
    """
    A few 3x3 convolutions (ReLU, optional norm), then one 1x1 convolution to K heatmap
    channels, K x D tag channels and K visibility logits, at the input's resolution. The
    heatmaps are regressed as they are (no activation), as in Associative Embedding.

    With ``tag_offset_unit`` > 0 the tags are spatial (D = 2): a pixel's tag is its own
    input-image position (x, y) plus the predicted offset, in units of ``tag_offset_unit``
    input pixels (:func:`pixel_positions`). The pull term then asks every joint of a person to
    point at one place, which a convolution can learn from what it sees around the joint;
    free tags must instead tell persons apart by values that do not depend on where they stand.
    """

    @configurable
    def __init__(
        self,
        *,
        in_channels,
        num_keypoints,
        tag_dim=1,
        conv_dims=(128, 128),
        dilations=(),
        norm="",
        stride=4,
        tag_offset_unit=0.0,
    ):
        """
        Args:
            in_channels (int): channels of the feature map.
            num_keypoints (int): K, joint types.
            tag_dim (int): D, numbers per tag; 2 with ``tag_offset_unit``.
            conv_dims (sequence[int]): widths of the hidden 3x3 convolutions.
            dilations (sequence[int]): their dilations (empty: 1 each), as many as ``conv_dims``.
            norm (str): their norm (Detectron2's ``get_norm`` names; "" for none).
            stride (int): the feature map's stride (read with ``tag_offset_unit``).
            tag_offset_unit (float): 0 for free tags; > 0 for spatial tags, their unit in input
                pixels.
        """
        super().__init__()
        self.num_keypoints = int(num_keypoints)
        self.tag_dim = int(tag_dim)
        self.stride = int(stride)
        self.tag_offset_unit = float(tag_offset_unit)
        if self.tag_offset_unit < 0:
            raise ValueError(f"MODEL.BOTTOM_UP.TAG_OFFSET_UNIT must be >= 0, got {tag_offset_unit}")
        if self.tag_offset_unit > 0 and self.tag_dim != 2:
            raise ValueError(
                f"MODEL.BOTTOM_UP.TAG_OFFSET_UNIT > 0 makes tags image positions (x, y): "
                f"MODEL.BOTTOM_UP.TAG_DIM must be 2, got {tag_dim}"
            )
        dilations = tuple(dilations) or (1,) * len(conv_dims)
        if len(dilations) != len(conv_dims) or min(dilations, default=1) < 1:
            raise ValueError(
                f"MODEL.BOTTOM_UP.DILATIONS {list(dilations)} must give one dilation >= 1 for each of the "
                f"{len(conv_dims)} MODEL.BOTTOM_UP.CONV_DIMS"
            )
        layers = []
        channels = in_channels
        for width, dilation in zip(conv_dims, dilations):
            layers.append(
                Conv2d(
                    channels, width, 3, padding=dilation, dilation=dilation, bias=not norm,
                    norm=get_norm(norm, width), activation=nn.ReLU(),
                )  # fmt: skip
            )
            channels = width
        self.convs = nn.Sequential(*layers)
        k, d = self.num_keypoints, self.tag_dim
        self.predictor = nn.Conv2d(channels, k * (2 + d), 1)
        for layer in self.convs:
            nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        # heatmaps and visibility logits start near 0 (the background, and undecided); free tags
        # start spread out (at equal tags the push term has no gradient), spatial ones at the
        # pixel's own position (persons apart already)
        nn.init.normal_(self.predictor.weight, std=0.001)
        if not self.tag_offset_unit:
            nn.init.normal_(self.predictor.weight[k : k + k * d], std=channels**-0.5)
        nn.init.zeros_(self.predictor.bias)

    def set_heatmap_prior(self, probability):
        """Start the heatmap channels at logit(``probability``) everywhere (for heatmaps that are
        logits, as the focal loss's: a rare foreground from the first step)."""
        with torch.no_grad():
            self.predictor.bias[: self.num_keypoints] = math.log(probability / (1 - probability))

    @classmethod
    def from_config(cls, cfg, input_shape: ShapeSpec):
        b = cfg.MODEL.BOTTOM_UP
        return {
            "in_channels": input_shape.channels,
            "num_keypoints": b.NUM_KEYPOINTS,
            "tag_dim": b.TAG_DIM,
            "conv_dims": tuple(b.CONV_DIMS),
            "dilations": tuple(b.DILATIONS),
            "norm": b.NORM,
            "stride": input_shape.stride,
            "tag_offset_unit": b.TAG_OFFSET_UNIT,
        }

    def forward(self, features):
        """
        Args:
            features (Tensor): (B, C, H, W).

        Returns:
            dict: ``heatmaps`` (B, K, H, W), ``tags`` (B, K, D, H, W), ``visibility_logits``
            (B, K, H, W), float32.
        """
        out = self.predictor(self.convs(features)).float()
        b, _, h, w = out.shape
        k, d = self.num_keypoints, self.tag_dim
        heatmaps, tags, visibility = out.split([k, k * d, k], dim=1)
        tags = tags.reshape(b, k, d, h, w)
        if self.tag_offset_unit:
            tags = tags + pixel_positions((h, w), self.stride, out.device) / self.tag_offset_unit
        return {"heatmaps": heatmaps, "tags": tags, "visibility_logits": visibility}


def pixel_positions(size, stride, device=None):
    """
    The input-image position of every feature pixel's center.

    Args:
        size (tuple[int, int]): (H, W) of a stride-``stride`` feature map.
        stride (int): its stride.

    Returns:
        Tensor (2, H, W) float32: (x, y) in input-image continuous coordinates (pixel i spans
        [i, i + 1]); feature pixel j covers input [s j, s (j + 1)), its center at s (j + 0.5).
    """
    h, w = size
    ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) * stride
    xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) * stride
    return torch.stack([xs[None, :].expand(h, w), ys[:, None].expand(h, w)])


def build_bottom_up_head(cfg, input_shape):
    """The head cfg.MODEL.BOTTOM_UP.HEAD_NAME names, for a feature map of ``input_shape``."""
    return BOTTOM_UP_HEAD_REGISTRY.get(cfg.MODEL.BOTTOM_UP.HEAD_NAME)(cfg, input_shape)
