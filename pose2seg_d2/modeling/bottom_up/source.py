"""
The "bottom_up" keypoint source: Pose2Seg's persons from a BottomUpKeypoints model, run inside
Pose2Seg's forward pass, either whole on each image or, with the backbone shared, its head
alone on Pose2Seg's own backbone features (one backbone pass from image to masks).
"""
import math
import os

import torch

from ...pose.keypoints import NUM_KEYPOINTS
from ..keypoint_sources import KEYPOINT_SOURCE_REGISTRY, ModelKeypointSource, confident_persons

__all__ = ["BottomUpKeypointSource", "backbone_fingerprint"]


def backbone_fingerprint(backbone):
    """
    Numbers that tell one backbone's weights from another's.

    Returns:
        (list[str], Tensor (n, 3) float64 on the host): the state_dict keys, and per tensor
        (flattened in its logical order, whatever its memory layout) its sum, its sum of squares
        and the sum of every 7th value.
    """
    names, rows = [], []
    for name, tensor in backbone.state_dict().items():
        values = tensor.detach().reshape(-1).to(torch.float32)
        squares = torch.dot(values, values).to(torch.float64)
        rows.append(torch.stack([values.sum(dtype=torch.float64), squares, values[::7].sum(dtype=torch.float64)]))
        names.append(name)
    return names, torch.stack(rows).cpu() if rows else torch.zeros(0, 3, dtype=torch.float64)


@KEYPOINT_SOURCE_REGISTRY.register()
class BottomUpKeypointSource(ModelKeypointSource):
    """
    Keypoints from a BottomUpKeypoints model (MODEL.POSE2SEG.KEYPOINT_MODEL.CONFIG_FILE and
    .WEIGHTS; docs/method.md §7). With MODEL.POSE2SEG.KEYPOINT_MODEL.SHARE_BACKBONE, only its
    head runs, on the backbone features Pose2Seg computes anyway (the model hands them in as
    ``features``); its own backbone is dropped after its weights are fingerprinted, and the first
    call (and any after Pose2Seg's backbone weights change) checks that Pose2Seg's backbone holds
    the same weights, since the head learned on those features. Without it, the whole model runs
    on each image resized to its own test size, as the "model" source runs its model.

    Each person's score is the model's person score; a joint is labeled when it was found and its
    score reaches KEYPOINT_CONFIDENCE_THRESHOLD, with v = 2 where its predicted visibility reaches
    the model's MODEL.BOTTOM_UP.VISIBILITY_THRESHOLD and v = 1 (covered) otherwise, as the
    ground truth's flags; persons are then filtered as for "model" (:func:`confident_persons`).
    """

    reads_backbone_features = True  # Pose2Seg hands in its backbone's features and the backbone

    def __init__(self, cfg):
        p = cfg.MODEL.POSE2SEG.KEYPOINT_MODEL
        if not p.CONFIG_FILE:
            raise ValueError(
                "MODEL.POSE2SEG.KEYPOINT_SOURCE is 'bottom_up' but MODEL.POSE2SEG.KEYPOINT_MODEL.CONFIG_FILE "
                "is empty (give a BottomUpKeypoints config, e.g. configs/synthetic/bottom_up_R_18_FPN_synthetic.yaml)"
            )
        weights = os.path.expanduser(os.path.expandvars(p.WEIGHTS))
        if weights and "://" not in weights and not os.path.isfile(weights):
            raise FileNotFoundError(
                f"MODEL.POSE2SEG.KEYPOINT_MODEL.WEIGHTS {p.WEIGHTS}: no such file; train the bottom-up model "
                f"first (python train_net.py --config-file {p.CONFIG_FILE}), or pass \"\" for the MODEL.WEIGHTS "
                "of its config"
            )
        super().__init__(cfg)
        kcfg = self.cfg
        if kcfg.MODEL.META_ARCHITECTURE != "BottomUpKeypoints":
            raise ValueError(
                f"MODEL.POSE2SEG.KEYPOINT_SOURCE 'bottom_up' needs a BottomUpKeypoints model, but "
                f"MODEL.POSE2SEG.KEYPOINT_MODEL.CONFIG_FILE {p.CONFIG_FILE} has MODEL.META_ARCHITECTURE "
                f"{kcfg.MODEL.META_ARCHITECTURE!r} (use KEYPOINT_SOURCE 'model' for it)"
            )
        if kcfg.MODEL.BOTTOM_UP.NUM_KEYPOINTS != NUM_KEYPOINTS:
            raise ValueError(
                f"{p.CONFIG_FILE}: MODEL.BOTTOM_UP.NUM_KEYPOINTS is {kcfg.MODEL.BOTTOM_UP.NUM_KEYPOINTS}, but "
                f"Pose2Seg takes the {NUM_KEYPOINTS} COCO keypoints"
            )
        self.visibility_threshold = kcfg.MODEL.BOTTOM_UP.VISIBILITY_THRESHOLD
        self.share_backbone = bool(p.SHARE_BACKBONE)
        if not self.share_backbone:
            return
        for option in ("INPUT.FORMAT", "MODEL.PIXEL_MEAN", "MODEL.PIXEL_STD"):
            ours, theirs = _option(cfg, option), _option(kcfg, option)
            same = ours == theirs if isinstance(ours, str) else [float(v) for v in ours] == [float(v) for v in theirs]
            if not same:
                raise ValueError(
                    f"MODEL.POSE2SEG.KEYPOINT_MODEL.SHARE_BACKBONE: {option} is {ours!r} for Pose2Seg and "
                    f"{theirs!r} in {p.CONFIG_FILE}; a shared backbone sees the images one way"
                )
        self.fingerprint = backbone_fingerprint(self.model.backbone)
        del self.model.backbone  # the head runs on Pose2Seg's backbone
        self._verified = None

    def _check_backbone(self, backbone):
        """Raise unless ``backbone`` holds the weights the model's own backbone held."""
        state = backbone.state_dict()
        key = (id(backbone), tuple(t._version for t in state.values()))
        if key == self._verified:
            return
        names, numbers = backbone_fingerprint(backbone)
        expected_names, expected = self.fingerprint
        where = self.cfg.MODEL.WEIGHTS or "its random initialization"
        if names != expected_names:
            missing = sorted(set(expected_names) - set(names))[:3] or sorted(set(names) - set(expected_names))[:3]
            raise ValueError(
                "MODEL.POSE2SEG.KEYPOINT_MODEL.SHARE_BACKBONE: Pose2Seg's backbone is not the bottom-up model's "
                f"(their state_dict keys differ, e.g. {missing}); set SHARE_BACKBONE False to run the "
                "bottom-up model on its own backbone"
            )
        differ = ~torch.isclose(numbers, expected, rtol=1e-6, atol=1e-9).all(dim=1)
        if differ.any():
            first = [n for n, d in zip(names, differ.tolist()) if d][:3]
            raise ValueError(
                "MODEL.POSE2SEG.KEYPOINT_MODEL.SHARE_BACKBONE: the bottom-up head learned on the backbone of "
                f"{where}, and Pose2Seg's backbone holds other weights ({int(differ.sum())} of {len(names)} "
                f"tensors differ, e.g. {first}); both must hold the same (frozen) backbone, or set "
                "SHARE_BACKBONE False to run the bottom-up model on its own backbone"
            )
        self._verified = key

    def _persons(self, keypoints, visibility, scores):
        """(keypoints (M, 17, 3) with v, scores (M,)) of the found, confident persons."""
        keypoints = keypoints.to(torch.float32).clone()
        found = keypoints[..., 2] > 0
        keypoints[..., 2] = torch.where(found, keypoints[..., 2], math.nan)  # not found: unlabeled
        flags = torch.where(visibility >= self.visibility_threshold, 2.0, 1.0)
        keypoints, scores, _ = confident_persons(keypoints, scores.to(torch.float32), **self.filter, flags=flags)
        return keypoints, scores

    @torch.no_grad()
    def __call__(self, batched_inputs, image_sizes, device, features=None, backbone=None):
        """
        Args:
            batched_inputs, image_sizes, device: as for every source (keypoint_sources.py).
            features (dict[str, Tensor] or None): the backbone outputs of the batch, which
                SHARE_BACKBONE needs; ``backbone`` the module that computed them.
        """
        if not self.share_backbone:
            inputs = [
                {"image": self._model_input(x["image"]), "height": h, "width": w}
                for x, (h, w) in zip(batched_inputs, image_sizes)
            ]
            out = []
            for result in self.model(inputs):
                instances = result["instances"]
                out.append(self._persons(instances.pred_keypoints, instances.pred_keypoint_visibility, instances.scores))
            return out
        if features is None or backbone is None:
            raise ValueError(
                "MODEL.POSE2SEG.KEYPOINT_MODEL.SHARE_BACKBONE is True, but this model hands its keypoint source "
                "no backbone features in its input images' frame (Pose2Seg does; the release model warps its "
                "images, the keypoints-only reference has no backbone): set SHARE_BACKBONE False"
            )
        self._check_backbone(backbone)
        # on the host: decoding ends there, and the numbers of persons are known there
        return [
            self._persons(p["keypoints"], p["visibility"], p["scores"])
            for p in self.model.predict_from_features(features, image_sizes)
        ]


def _option(cfg, dotted):
    node = cfg
    for part in dotted.split("."):
        node = node[part]
    return node
