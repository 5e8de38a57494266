"""The bottom-up keypoint head: per-joint heatmaps, tags and visibility logits on one feature map."""
from detectron2.config import configurable
from detectron2.layers import Conv2d, ShapeSpec, get_norm
from detectron2.utils.registry import Registry
from torch import nn

__all__ = ["BOTTOM_UP_HEAD_REGISTRY", "AssociativeEmbeddingHead", "build_bottom_up_head"]

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
    """

    @configurable
    def __init__(self, *, in_channels, num_keypoints, tag_dim=1, conv_dims=(128, 128), norm=""):
        """
        Args:
            in_channels (int): channels of the feature map.
            num_keypoints (int): K, joint types.
            tag_dim (int): D, numbers per tag.
            conv_dims (sequence[int]): widths of the hidden 3x3 convolutions.
            norm (str): their norm (Detectron2's ``get_norm`` names; "" for none).
        """
        super().__init__()
        self.num_keypoints = int(num_keypoints)
        self.tag_dim = int(tag_dim)
        layers = []
        channels = in_channels
        for width in conv_dims:
            layers.append(
                Conv2d(channels, width, 3, padding=1, bias=not norm, norm=get_norm(norm, width), activation=nn.ReLU())
            )
            channels = width
        self.convs = nn.Sequential(*layers)
        k, d = self.num_keypoints, self.tag_dim
        self.predictor = nn.Conv2d(channels, k * (2 + d), 1)
        for layer in self.convs:
            nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        # heatmaps and visibility logits start near 0 (the background, and undecided); tags start
        # spread out: at equal tags the push term has no gradient
        nn.init.normal_(self.predictor.weight, std=0.001)
        nn.init.normal_(self.predictor.weight[k : k + k * d], std=channels**-0.5)
        nn.init.zeros_(self.predictor.bias)

    @classmethod
    def from_config(cls, cfg, input_shape: ShapeSpec):
        b = cfg.MODEL.BOTTOM_UP
        return {
            "in_channels": input_shape.channels,
            "num_keypoints": b.NUM_KEYPOINTS,
            "tag_dim": b.TAG_DIM,
            "conv_dims": tuple(b.CONV_DIMS),
            "norm": b.NORM,
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
        return {"heatmaps": heatmaps, "tags": tags.reshape(b, k, d, h, w), "visibility_logits": visibility}


def build_bottom_up_head(cfg, input_shape):
    """The head cfg.MODEL.BOTTOM_UP.HEAD_NAME names, for a feature map of ``input_shape``."""
    return BOTTOM_UP_HEAD_REGISTRY.get(cfg.MODEL.BOTTOM_UP.HEAD_NAME)(cfg, input_shape)
