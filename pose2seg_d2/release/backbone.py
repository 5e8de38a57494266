"""The release's backbone: ResNet with an FPN whose top-down path upsamples bilinearly
(docs/method.md §6)."""
import math

import fvcore.nn.weight_init as weight_init
import torch.nn.functional as F
from detectron2.layers import Conv2d, ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY, Backbone
from detectron2.modeling.backbone.resnet import build_resnet_backbone

__all__ = ["ReleaseFPN", "build_release_resnet_fpn_backbone"]


class ReleaseFPN(Backbone):
    """
    The feature pyramid of the release, of which Pose2Seg reads only the finest level.

    Top-down: the coarsest lateral (1x1 conv with bias), then at each finer level the running map
    upsampled *bilinearly to the lateral's size* (``align_corners=False``, what PyTorch 1.0's
    ``F.upsample`` did) plus the lateral; the finest sum goes through one 3x3 conv with bias.
    Detectron2's :class:`FPN` differs: nearest-neighbor 2x upsampling, and every level output.
    The coarser levels' output convs of the release are not built: they do not reach the
    finest map.

    Layers are named like Detectron2's FPN (``fpn_lateral{stage}``, ``fpn_output{stage}``, the
    bottom-up network under ``bottom_up``), so that
    :func:`pose2seg_d2.release.convert_release_state_dict` maps the release's
    ``fpn_c{i}p{i}`` / ``fpn_p1`` onto them.
    """

    def __init__(self, bottom_up, in_features, out_channels):
        """
        Args:
            bottom_up (Backbone): e.g. Detectron2's ResNet.
            in_features (list[str]): its outputs, finest first (e.g. res2 .. res5), with
                strides doubling from one to the next.
            out_channels (int): channels of the laterals and of the output.
        """
        super().__init__()
        shapes = bottom_up.output_shape()
        strides = [shapes[f].stride for f in in_features]
        for finer, coarser in zip(strides, strides[1:]):
            if coarser != 2 * finer:
                raise ValueError(f"ReleaseFPN needs strides doubling level to level, got {strides}")
        self.bottom_up = bottom_up
        self.in_features = tuple(in_features)
        lateral_convs = []
        for name, stride in zip(in_features, strides):
            conv = Conv2d(shapes[name].channels, out_channels, kernel_size=1, bias=True)
            weight_init.c2_xavier_fill(conv)
            self.add_module(f"fpn_lateral{int(math.log2(stride))}", conv)
            lateral_convs.append(conv)
        self.lateral_convs = lateral_convs  # finest first
        finest = int(math.log2(strides[0]))
        output_conv = Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=True)
        weight_init.c2_xavier_fill(output_conv)
        self.add_module(f"fpn_output{finest}", output_conv)
        self.output_convs = [output_conv]  # a plain list, as Detectron2's FPN keeps its convs
        self._out_features = [f"p{finest}"]
        self._out_feature_strides = {f"p{finest}": strides[0]}
        self._out_feature_channels = {f"p{finest}": out_channels}
        self._size_divisibility = strides[-1]

    @property
    def size_divisibility(self):
        return self._size_divisibility

    def forward(self, x):
        """
        Args:
            x (Tensor): (B, C, H, W) input images.

        Returns:
            dict[str, Tensor]: the finest level only, e.g. ``{"p2": (B, out_channels, H / 4, W / 4)}``.
        """
        bottom_up = self.bottom_up(x)
        features = [bottom_up[name] for name in self.in_features]
        top = self.lateral_convs[-1](features[-1])
        for lateral_conv, feature in zip(self.lateral_convs[-2::-1], features[-2::-1]):
            lateral = lateral_conv(feature)
            top = F.interpolate(top, size=lateral.shape[-2:], mode="bilinear", align_corners=False) + lateral
        return {self._out_features[0]: self.output_convs[0](top)}

    def output_shape(self):
        return {
            name: ShapeSpec(channels=self._out_feature_channels[name], stride=self._out_feature_strides[name])
            for name in self._out_features
        }


@BACKBONE_REGISTRY.register()
def build_release_resnet_fpn_backbone(cfg, input_shape: ShapeSpec):
    """
    Detectron2's ResNet (MODEL.RESNETS; the release's ResNet-50 is DEPTH 50, STRIDE_IN_1X1 True,
    its BatchNorm in eval mode FrozenBN) under :class:`ReleaseFPN` (MODEL.FPN.IN_FEATURES and
    OUT_CHANNELS).
    """
    bottom_up = build_resnet_backbone(cfg, input_shape)
    return ReleaseFPN(bottom_up, cfg.MODEL.FPN.IN_FEATURES, cfg.MODEL.FPN.OUT_CHANNELS)
