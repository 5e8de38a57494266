"""Random weights that behave: FrozenBatchNorm statistics set from the data, for benchmarks and
tests of models that have no pretrained weights."""
import torch

__all__ = ["calibrate_frozen_batchnorm"]


def calibrate_frozen_batchnorm(model, inputs):
    """
    Random weights behind FrozenBatchNorm (whose statistics are 0 and 1 until pretrained
    weights are loaded) let activations grow block after block, until Mask R-CNN's boxes
    overflow and none survives. Set every FrozenBatchNorm's statistics to those of its input on
    ``inputs`` (one forward pass of the backbone), as pretrained weights would roughly have them.
    The amount of computation does not change.
    """
    from detectron2.layers import FrozenBatchNorm2d

    def set_statistics(module, args):
        x = args[0].detach()
        module.running_mean.copy_(x.mean(dim=(0, 2, 3)))
        module.running_var.copy_(x.var(dim=(0, 2, 3)))

    handles = [m.register_forward_pre_hook(set_statistics) for m in model.modules() if isinstance(m, FrozenBatchNorm2d)]
    try:
        with torch.no_grad():
            model.backbone(model.preprocess_image([inputs]).tensor)
    finally:
        for handle in handles:
            handle.remove()
    return len(handles)
