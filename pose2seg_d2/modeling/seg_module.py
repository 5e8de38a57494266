"""SegModule: the fully convolutional mask head that runs in the aligned window (docs/method.md §2.5)."""
import math

import fvcore.nn.weight_init as weight_init
import torch
import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.layers import get_norm
from detectron2.utils.registry import Registry
from torch import nn

from ..utils import to_network_layout

__all__ = ["POSE2SEG_HEAD_REGISTRY", "SegModule", "Bottleneck", "build_pose2seg_head"]

_PERSON_PRIOR = 0.125

POSE2SEG_HEAD_REGISTRY = Registry("POSE2SEG_HEAD")
POSE2SEG_HEAD_REGISTRY.__doc__ = """
Registry for Pose2Seg's mask heads: called with (cfg, in_channels), they map
(N, in_channels, h, w) window inputs to (N, num_classes, h, w) logits.
Chosen by cfg.MODEL.POSE2SEG.HEAD.
"""


def _conv(in_channels, out_channels, kernel_size, stride=1):
    conv = nn.Conv2d(
        in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=True
    )
    weight_init.c2_msra_fill(conv)
    return conv


class Bottleneck(nn.Module):
    """Residual unit: 1x1 -> ``bottleneck``, 3x3, 1x1 -> ``out``, each conv with a bias and a norm;
    a 1x1 projection shortcut (conv + norm) when the input width differs from ``out``."""

    def __init__(self, in_channels, bottleneck_channels, out_channels, norm="BN"):
        super().__init__()
        self.conv1 = _conv(in_channels, bottleneck_channels, 1)
        self.norm1 = get_norm(norm, bottleneck_channels) or nn.Identity()
        self.conv2 = _conv(bottleneck_channels, bottleneck_channels, 3)
        self.norm2 = get_norm(norm, bottleneck_channels) or nn.Identity()
        self.conv3 = _conv(bottleneck_channels, out_channels, 1)
        self.norm3 = get_norm(norm, out_channels) or nn.Identity()
        if in_channels != out_channels:
            self.shortcut = nn.Sequential(
                _conv(in_channels, out_channels, 1), get_norm(norm, out_channels) or nn.Identity()
            )
        else:
            self.shortcut = nn.Identity()

    def forward(self, x):
        out = F.relu_(self.norm1(self.conv1(x)))
        out = F.relu_(self.norm2(self.conv2(out)))
        out = self.norm3(self.conv3(out))
        return F.relu_(out + self.shortcut(x))


@POSE2SEG_HEAD_REGISTRY.register()
class SegModule(nn.Module):
    """
    Input (N, in_channels, h, w) (aligned features and skeleton channels); output (N,
    num_classes, h, w) logits. h and w must be even.

    Layout: 7x7 stride-2 conv -> ``stem_channels`` + norm + ReLU; ``num_units`` bottleneck units
    at half resolution; 2x bilinear upsampling; one decoder bottleneck unit; 1x1 conv to the
    logits. The defaults are the release's widths (about 19.1 GMACs per 64x64 window); the
    width arguments make lighter heads.
    """

    @configurable
    def __init__(
        self,
        in_channels=311,
        num_classes=1,
        *,
        stem_channels=256,
        num_units=10,
        bottleneck_channels=256,
        unit_out_channels=1024,
        decoder_bottleneck_channels=128,
        decoder_out_channels=512,
        norm="BN",
        upsample_align_corners=False,
    ):
        super().__init__()
        if num_units < 1:
            raise ValueError(f"SegModule needs at least one residual unit, got num_units={num_units}")
        self.stem = _conv(in_channels, stem_channels, 7, stride=2)
        self.stem_norm = get_norm(norm, stem_channels) or nn.Identity()
        units = []
        width = stem_channels
        for _ in range(num_units):
            units.append(Bottleneck(width, bottleneck_channels, unit_out_channels, norm))
            width = unit_out_channels
        self.units = nn.Sequential(*units)
        self.decoder = Bottleneck(width, decoder_bottleneck_channels, decoder_out_channels, norm)
        self.predictor = nn.Conv2d(decoder_out_channels, num_classes, 1)
        nn.init.normal_(self.predictor.weight, std=0.001)
        # Start at the person prior of a window (about 1 pixel in 8) rather than at 0.5, so
        # that early training does not spend itself on learning the background.
        nn.init.constant_(self.predictor.bias, 0.0)
        with torch.no_grad():
            self.predictor.bias[-1] = math.log(_PERSON_PRIOR / (1 - _PERSON_PRIOR))
        self.num_classes = num_classes
        self.upsample_align_corners = upsample_align_corners

    @classmethod
    def from_config(cls, cfg, in_channels):
        p = cfg.MODEL.POSE2SEG.SEG_MODULE
        return {
            "in_channels": in_channels,
            "num_classes": p.NUM_CLASSES,
            "stem_channels": p.STEM_CHANNELS,
            "num_units": p.NUM_UNITS,
            "bottleneck_channels": p.BOTTLENECK_CHANNELS,
            "unit_out_channels": p.UNIT_OUT_CHANNELS,
            "decoder_bottleneck_channels": p.DECODER_BOTTLENECK_CHANNELS,
            "decoder_out_channels": p.DECODER_OUT_CHANNELS,
            "norm": p.NORM,
            "upsample_align_corners": p.UPSAMPLE_ALIGN_CORNERS,
        }

    def forward(self, x):
        if x.shape[-1] % 2 or x.shape[-2] % 2:
            raise ValueError(f"SegModule needs an even window size, got {tuple(x.shape[-2:])}")
        size = x.shape[-2:]
        # a no-op where the input already is so (Pose2Seg builds its window inputs so)
        x = to_network_layout(x)
        x = F.relu_(self.stem_norm(self.stem(x)))
        x = self.units(x)
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=self.upsample_align_corners)
        x = self.decoder(x)
        return self.predictor(x)


def build_pose2seg_head(cfg, in_channels):
    return POSE2SEG_HEAD_REGISTRY.get(cfg.MODEL.POSE2SEG.HEAD)(cfg, in_channels)
