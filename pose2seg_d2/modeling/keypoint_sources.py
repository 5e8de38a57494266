"""
Keypoint sources: where Pose2Seg gets each person's skeleton at inference.

A source is called with the model's ``batched_inputs`` and their preprocessed ``ImageList``
and returns, per image, ``(keypoints, person_scores)``: keypoints (N, 17, 3) float32 of
(x, y, v) in the *input image's* continuous coordinates (Detectron2's convention: pixel
(i, j) spans [i, i + 1]) with v > 0 meaning labeled, and person_scores (N,) float32.
"""
import torch
from detectron2.utils.registry import Registry

__all__ = ["KEYPOINT_SOURCE_REGISTRY", "GTKeypointSource", "build_keypoint_source"]

KEYPOINT_SOURCE_REGISTRY = Registry("POSE2SEG_KEYPOINT_SOURCE")
KEYPOINT_SOURCE_REGISTRY.__doc__ = """
Registry for keypoint sources, called with (cfg, model); chosen by
cfg.MODEL.POSE2SEG.KEYPOINT_SOURCE ("gt" is GTKeypointSource).
"""

# short config names of the registered sources
_ALIASES = {"gt": "GTKeypointSource"}


@KEYPOINT_SOURCE_REGISTRY.register()
class GTKeypointSource:
    """Ground-truth keypoints: ``instances.gt_keypoints`` of each input; every person scores 1."""

    def __init__(self, cfg=None, model=None):
        pass

    def __call__(self, batched_inputs, images):
        out = []
        for i, x in enumerate(batched_inputs):
            instances = x.get("instances")
            if instances is None or not instances.has("gt_keypoints"):
                raise ValueError(
                    f"KEYPOINT_SOURCE 'gt' needs instances with gt_keypoints, but input {i} "
                    f"({x.get('file_name', 'no file name')}) has none; map it with "
                    "pose2seg_d2.data.Pose2SegDatasetMapper, which keeps keypoints at test time."
                )
            keypoints = instances.gt_keypoints.tensor.to(images.tensor.device, torch.float32)
            out.append((keypoints, torch.ones(len(keypoints), device=keypoints.device)))
        return out


def build_keypoint_source(cfg, model=None):
    name = cfg.MODEL.POSE2SEG.KEYPOINT_SOURCE
    return KEYPOINT_SOURCE_REGISTRY.get(_ALIASES.get(name, name))(cfg, model)
