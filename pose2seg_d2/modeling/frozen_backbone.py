"""
A ResNet FPN backbone that does not learn: its FPN frozen (MODEL.BACKBONE.FREEZE_FPN), and
optionally computed in reduced precision (MODEL.BACKBONE.FROZEN_AUTOCAST). Both are part of
building it (MODEL.BACKBONE.NAME "build_frozen_resnet_fpn_backbone"), so that every model built
from such a config, by Detectron2's ``build_model`` or any other way, honors them.
"""
import contextlib
import functools
import logging

import torch
from detectron2.layers import FrozenBatchNorm2d, ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY
from detectron2.modeling.backbone import FPN
from detectron2.modeling.backbone.fpn import LastLevelMaxPool
from detectron2.modeling.backbone.resnet import build_resnet_backbone

__all__ = [
    "AUTOCAST_DTYPES",
    "BACKBONE_OPTIONS_BUILDERS",
    "FrozenFPN",
    "build_frozen_resnet_fpn_backbone",
    "check_backbone_options_are_read",
    "computes_natively",
    "freeze_fpn",
]

# MODEL.BACKBONE.FROZEN_AUTOCAST and MODEL.POSE2SEG.AUTOCAST -> dtype
AUTOCAST_DTYPES = {"": None, "bf16": torch.bfloat16, "fp16": torch.float16}

# the MODEL.BACKBONE.NAMEs whose builders read MODEL.BACKBONE.FREEZE_FPN and FROZEN_AUTOCAST
BACKBONE_OPTIONS_BUILDERS = ("build_frozen_resnet_fpn_backbone",)


def freeze_fpn(backbone):
    """
    Freeze an FPN backbone in place (MODEL.BACKBONE.FREEZE_FPN): no parameter of its lateral and
    output convolutions (nor of its top block) learns, and their norms become FrozenBN, so they
    keep the loaded statistics. The bottom-up network is left as MODEL.BACKBONE.FREEZE_AT made it.

    Returns:
        the backbone.
    """
    if not isinstance(backbone, FPN):
        raise ValueError(f"MODEL.BACKBONE.FREEZE_FPN needs an FPN backbone, got {type(backbone).__name__}")
    for name, child in backbone.named_children():
        if name == "bottom_up":
            continue
        for p in child.parameters():
            p.requires_grad_(False)
        FrozenBatchNorm2d.convert_frozen_batchnorm(child)
    return backbone


def frozen_autocast_dtype(name):
    """The dtype of MODEL.BACKBONE.FROZEN_AUTOCAST ``name`` (None for "")."""
    if name not in AUTOCAST_DTYPES:
        raise ValueError(f"MODEL.BACKBONE.FROZEN_AUTOCAST must be one of {sorted(AUTOCAST_DTYPES)}, got {name!r}")
    return AUTOCAST_DTYPES[name]


@functools.lru_cache(maxsize=None)
def computes_natively(device_type, dtype):
    """
    Whether ``device_type`` ("cpu", "cuda") has arithmetic of its own for ``dtype`` (bfloat16 or
    float16). Without it a CPU emulates the type: on one without AVX-512 (an AVX2 AMD EPYC, say),
    a bfloat16 matrix product runs about 100x slower than in float32, not 2x faster.
    """
    if device_type == "cuda":
        return dtype != torch.bfloat16 or torch.cuda.is_bf16_supported()
    if device_type != "cpu":
        return True
    check = {torch.bfloat16: "_is_mkldnn_bf16_supported", torch.float16: "_is_mkldnn_fp16_supported"}[dtype]
    return bool(getattr(torch.ops.mkldnn, check)())


class FrozenFPN(FPN):
    """
    Detectron2's :class:`FPN`, its own layers frozen or not (``freeze``), and, wholly frozen,
    computed channels-last under ``torch.autocast`` in ``autocast_dtype``, in training and at
    test time alike, so that heads learn on the features they are tested on. Its modules and
    state_dict keys are the FPN's; its weights stay float32 (checkpoints unchanged), stored
    channels-last when ``autocast_dtype`` is set.

    On a device that would only emulate ``autocast_dtype`` (:func:`computes_natively`), it
    computes in float32 instead, and logs so once: the same features to within the reduced
    type's rounding, at the speed the option is there for.
    """

    def __init__(self, *args, freeze=True, autocast_dtype=None, **kwargs):
        """
        Args:
            args, kwargs: those of :class:`FPN`.
            freeze (bool): freeze the FPN's own layers (:func:`freeze_fpn`).
            autocast_dtype (torch.dtype or None): torch.bfloat16 or torch.float16; no parameter
                may then require gradients (the reduced precision would otherwise reach training
                without a loss scale).
        """
        super().__init__(*args, **kwargs)
        if freeze:
            freeze_fpn(self)
        self.autocast_dtype = autocast_dtype
        if autocast_dtype is None:
            return
        learning = [n for n, p in self.named_parameters() if p.requires_grad]
        if learning:
            raise ValueError(
                "MODEL.BACKBONE.FROZEN_AUTOCAST needs a wholly frozen backbone (MODEL.BACKBONE.FREEZE_AT 5 "
                f"and MODEL.BACKBONE.FREEZE_FPN True); these parameters learn: {learning[:3]}"
                + (f" and {len(learning) - 3} more" if len(learning) > 3 else "")
                + '. To train the backbone, set MODEL.BACKBONE.FROZEN_AUTOCAST "".'
            )
        self.to(memory_format=torch.channels_last)

    def forward(self, x):
        """
        Args:
            x (Tensor): (B, 3, H, W) images, of any memory layout.

        Returns:
            dict[str, Tensor]: the FPN's levels, (B, C, H / stride, W / stride) float32
            (contiguous under autocast: the heads see the dtype and layout they were built for).
        """
        if self.autocast_dtype is None:
            return super().forward(x)
        if computes_natively(x.device.type, self.autocast_dtype):
            reduced = torch.autocast(x.device.type, dtype=self.autocast_dtype)
        else:
            _warn_emulated(x.device.type, self.autocast_dtype)
            reduced = contextlib.nullcontext()
        with reduced:
            features = super().forward(x.contiguous(memory_format=torch.channels_last))
        return {name: f.float().contiguous() for name, f in features.items()}


@functools.lru_cache(maxsize=None)
def _warn_emulated(device_type, dtype):
    logging.getLogger(__name__).warning(
        "MODEL.BACKBONE.FROZEN_AUTOCAST: this %s has no %s arithmetic of its own (it would emulate "
        "it, many times slower than float32); the frozen backbone computes in float32",
        device_type,
        dtype,
    )


@BACKBONE_REGISTRY.register()
def build_frozen_resnet_fpn_backbone(cfg, input_shape: ShapeSpec):
    """
    Detectron2's ``build_resnet_fpn_backbone`` (MODEL.RESNETS, MODEL.FPN; the ResNet's stages
    frozen by MODEL.BACKBONE.FREEZE_AT) as a :class:`FrozenFPN`: its FPN frozen when
    MODEL.BACKBONE.FREEZE_FPN, computed in MODEL.BACKBONE.FROZEN_AUTOCAST's dtype when not "".
    """
    dtype = frozen_autocast_dtype(cfg.MODEL.BACKBONE.FROZEN_AUTOCAST)
    return FrozenFPN(
        bottom_up=build_resnet_backbone(cfg, input_shape),
        in_features=cfg.MODEL.FPN.IN_FEATURES,
        out_channels=cfg.MODEL.FPN.OUT_CHANNELS,
        norm=cfg.MODEL.FPN.NORM,
        top_block=LastLevelMaxPool(),
        fuse_type=cfg.MODEL.FPN.FUSE_TYPE,
        freeze=cfg.MODEL.BACKBONE.FREEZE_FPN,
        autocast_dtype=dtype,
    )


def check_backbone_options_are_read(cfg):
    """
    Raise a ValueError when ``cfg`` sets MODEL.BACKBONE.FREEZE_FPN or FROZEN_AUTOCAST for a
    backbone builder (MODEL.BACKBONE.NAME) that does not read them.
    """
    backbone = cfg.MODEL.BACKBONE
    if (backbone.FREEZE_FPN or backbone.FROZEN_AUTOCAST) and backbone.NAME not in BACKBONE_OPTIONS_BUILDERS:
        raise ValueError(
            f"MODEL.BACKBONE.FREEZE_FPN={backbone.FREEZE_FPN} / FROZEN_AUTOCAST={backbone.FROZEN_AUTOCAST!r} are "
            f"read only by MODEL.BACKBONE.NAME {' or '.join(map(repr, BACKBONE_OPTIONS_BUILDERS))}, "
            f"not by {backbone.NAME!r}"
        )
