"""A backbone that does not learn: its FPN frozen (MODEL.BACKBONE.FREEZE_FPN), and optionally
computed in reduced precision (MODEL.BACKBONE.FROZEN_AUTOCAST), for every meta-architecture."""
import torch

__all__ = ["AUTOCAST_DTYPES", "apply_backbone_options", "autocast_frozen_backbone", "freeze_fpn"]

# MODEL.BACKBONE.FROZEN_AUTOCAST and MODEL.POSE2SEG.AUTOCAST -> dtype
AUTOCAST_DTYPES = {"": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def freeze_fpn(backbone):
    """
    Freeze an FPN backbone in place (MODEL.BACKBONE.FREEZE_FPN): no parameter of its lateral and
    output convolutions (nor of its top block) learns, and their norms become FrozenBN, so they
    keep the loaded statistics. The bottom-up network is left as MODEL.BACKBONE.FREEZE_AT made it.

    Returns:
        the backbone.
    """
    from detectron2.layers import FrozenBatchNorm2d
    from detectron2.modeling.backbone import FPN

    if not isinstance(backbone, FPN):
        raise ValueError(f"MODEL.BACKBONE.FREEZE_FPN needs an FPN backbone, got {type(backbone).__name__}")
    for name, child in backbone.named_children():
        if name == "bottom_up":
            continue
        for p in child.parameters():
            p.requires_grad_(False)
        FrozenBatchNorm2d.convert_frozen_batchnorm(child)
    return backbone


class _AutocastForward:
    """The backbone's own forward, channels-last under torch.autocast, features back in float32
    (contiguous): the heads see the dtype and layout they were built for."""

    def __init__(self, forward, dtype):
        self.forward = forward
        self.dtype = dtype

    def __call__(self, x):
        with torch.autocast(x.device.type, dtype=self.dtype):
            features = self.forward(x.contiguous(memory_format=torch.channels_last))
        return {name: f.float().contiguous() for name, f in features.items()}


def autocast_frozen_backbone(backbone, dtype):
    """
    Compute a frozen backbone in ``dtype`` (MODEL.BACKBONE.FROZEN_AUTOCAST), in training and at
    test time alike, so that heads learn on the features they are tested on. Its weights stay
    float32 (checkpoints unchanged), stored channels-last.

    Args:
        backbone (Backbone): no parameter may require gradients (the reduced precision would
            otherwise reach training without a loss scale).
        dtype (torch.dtype): torch.bfloat16 or torch.float16.

    Returns:
        the backbone, whose ``forward`` now takes (B, 3, H, W) images of any layout and returns
        float32 (B, C, H / stride, W / stride) features.
    """
    learning = [n for n, p in backbone.named_parameters() if p.requires_grad]
    if learning:
        raise ValueError(
            "MODEL.BACKBONE.FROZEN_AUTOCAST needs a wholly frozen backbone (MODEL.BACKBONE.FREEZE_AT 5 "
            f"and MODEL.BACKBONE.FREEZE_FPN True); these parameters learn: {learning[:3]}"
            + (f" and {len(learning) - 3} more" if len(learning) > 3 else "")
            + '. To train the backbone, set MODEL.BACKBONE.FROZEN_AUTOCAST "".'
        )
    backbone.to(memory_format=torch.channels_last)
    backbone.forward = _AutocastForward(backbone.forward, dtype)
    return backbone


def apply_backbone_options(model, cfg):
    """
    MODEL.BACKBONE.FREEZE_FPN and MODEL.BACKBONE.FROZEN_AUTOCAST on a built model with a
    ``backbone`` (any meta-architecture; models without one are returned as they are). Every
    place that builds a model from a config for training or inference calls this.

    Returns:
        the model.
    """
    backbone = getattr(model, "backbone", None)
    if backbone is None:
        return model
    if cfg.MODEL.BACKBONE.FREEZE_FPN:
        freeze_fpn(backbone)
    name = cfg.MODEL.BACKBONE.FROZEN_AUTOCAST
    if name not in AUTOCAST_DTYPES:
        raise ValueError(f"MODEL.BACKBONE.FROZEN_AUTOCAST must be one of {sorted(AUTOCAST_DTYPES)}, got {name!r}")
    if AUTOCAST_DTYPES[name] is not None:
        autocast_frozen_backbone(backbone, AUTOCAST_DTYPES[name])
    return model
