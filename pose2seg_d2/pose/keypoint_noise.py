"""
A pose estimator's errors, simulated on ground-truth skeletons (docs/method.md §2.8): joints
moved by Gaussian noise scaled as COCO's OKS scales distances, dropped joints, left/right
swaps, joints taken from a nearby person, and the visibility flag removed.

Every function takes keypoints (N, K, 3) of (x, y, v) in any one coordinate frame (Detectron2's
continuous coordinates in this project; only differences and the persons' areas in the same
frame enter), v > 0 labeled, returns new keypoints of the same shape and dtype, and changes only
labeled joints. Random draws come from ``generator`` (a ``torch.Generator``; None: torch's
global one, which Detectron2 seeds with cfg.SEED), so a seed fixes the result.

The noise scale's convention: a labeled joint k of a person of segment area ``a`` moves by
``(dx, dy)``, each independently normal with standard deviation
``sigma_scale * sigma_k * sqrt(a)``, with ``sigma_k`` COCO's per-joint constant as pycocotools
lists it (:data:`~pose2seg_d2.pose.oks.COCO_PERSON_OKS_SIGMAS`, 0.026 for the nose). COCO's OKS
uses it doubled, ``exp(-d^2 / (2 a (2 sigma_k)^2))``, so at ``sigma_scale`` s a joint's expected
OKS is ``1 / (1 + s^2 / 4)``: 0.94 at 0.5, 0.8 at 1, 0.5 at 2.
"""
from dataclasses import dataclass

import torch

from .keypoints import flip_permutation
from .oks import COCO_PERSON_OKS_SIGMAS

__all__ = [
    "SWAP_UNITS",
    "KeypointNoise",
    "jitter_keypoints",
    "drop_keypoints",
    "swap_left_right",
    "move_onto_neighbors",
    "remove_visibility",
    "perturb_keypoints",
]

SWAP_UNITS = ("pair", "person")


def _labeled(keypoints):
    return keypoints[..., 2] > 0


def _uniform(shape, generator, device):
    return torch.rand(shape, generator=generator, device=device)


def jitter_keypoints(keypoints, areas, sigma_scale, sigmas=COCO_PERSON_OKS_SIGMAS, generator=None):
    """
    Move every labeled joint by Gaussian noise scaled like COCO's OKS.

    Args:
        keypoints (Tensor): (N, K, 3) of (x, y, v).
        areas (Tensor): (N,) each person's segment area, in pixels of the keypoints' frame; a
            person of area 0 does not move.
        sigma_scale (float): the standard deviation of each coordinate's displacement, in units
            of ``sigma_k * sqrt(area)`` (module docstring).
        sigmas (sequence[float]): K per-joint constants (COCO's by default).

    Returns:
        Tensor (N, K, 3): labeled joints moved, v kept; unlabeled joints unchanged.
    """
    if sigma_scale < 0:
        raise ValueError(f"sigma_scale must be >= 0, got {sigma_scale}")
    if sigma_scale == 0 or keypoints.numel() == 0:
        return keypoints.clone()
    sigma = torch.as_tensor(sigmas, dtype=keypoints.dtype, device=keypoints.device)
    areas = torch.as_tensor(areas, dtype=keypoints.dtype, device=keypoints.device).clamp(min=0)
    std = sigma_scale * sigma[None, :] * areas.sqrt()[:, None]  # (N, K)
    noise = torch.randn(keypoints.shape[:-1] + (2,), generator=generator, device=keypoints.device)
    noise = noise.to(keypoints.dtype) * std[..., None] * _labeled(keypoints)[..., None]
    out = keypoints.clone()
    out[..., :2] += noise
    return out


def drop_keypoints(keypoints, prob, generator=None):
    """
    Make each labeled joint unlabeled with probability ``prob``, independently.

    Returns:
        Tensor (N, K, 3): dropped joints are (0, 0, 0), COCO's unlabeled.
    """
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"the drop probability must be in [0, 1], got {prob}")
    if prob == 0 or keypoints.numel() == 0:
        return keypoints.clone()
    dropped = (_uniform(keypoints.shape[:-1], generator, keypoints.device) < prob) & _labeled(keypoints)
    return torch.where(dropped[..., None], torch.zeros_like(keypoints), keypoints)


def swap_left_right(keypoints, prob, per="pair", flip_indices=None, generator=None):
    """
    Swap left and right joints, through the flip map.

    Args:
        keypoints (Tensor): (N, K, 3).
        prob (float): the probability of a swap, independently for each person and each
            left/right pair (``per="pair"``: the left and right wrists trade places, the rest
            stays) or for each person as a whole (``per="person"``: every pair trades, the
            skeleton seen from behind).
        flip_indices (sequence[int] or None): K indices, ``flipped[:, k] = keypoints[:,
            flip_indices[k]]`` (:func:`flip_permutation`; the COCO flip map by default).

    Returns:
        Tensor (N, K, 3): the swapped joints trade (x, y, v) whole (a labeled joint and an
        unlabeled one trade too: the label moves with the position).
    """
    if per not in SWAP_UNITS:
        raise ValueError(f"the swap unit must be one of {SWAP_UNITS}, got {per!r}")
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"the swap probability must be in [0, 1], got {prob}")
    if prob == 0 or keypoints.numel() == 0:
        return keypoints.clone()
    num, num_joints = keypoints.shape[:2]
    partner = torch.as_tensor(
        flip_permutation() if flip_indices is None else flip_indices, dtype=torch.long, device=keypoints.device
    )
    if len(partner) != num_joints:
        raise ValueError(f"flip_indices has {len(partner)} entries for {num_joints} keypoints")
    joint = torch.arange(num_joints, device=keypoints.device)
    # one draw per pair, read by both of its joints through the pair's lower index
    pair_of = torch.minimum(joint, partner)
    shape = (num, num_joints) if per == "pair" else (num, 1)
    draws = _uniform(shape, generator, keypoints.device) < prob
    swapped = draws[:, pair_of] if per == "pair" else draws.expand(num, num_joints)
    swapped = swapped & (partner != joint)
    return torch.where(swapped[..., None], keypoints[:, partner], keypoints)


def move_onto_neighbors(keypoints, image_index, prob, generator=None):
    """
    With probability ``prob``, independently for each labeled joint, the joint becomes the same
    joint of another person of its image: of those who have it labeled, the one whose joint is
    nearest (what a heatmap peak or a grouping that picks the neighbor's wrist gives). A joint
    no other person of the image has labeled stays.

    Args:
        keypoints (Tensor): (N, K, 3).
        image_index (Tensor): (N,) long, each person's image.
        prob (float): in [0, 1].

    Returns:
        Tensor (N, K, 3): moved joints take the other person's (x, y, v).

    Memory is O(N^2 K): call it on one batch, not on a whole dataset.
    """
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"the neighbor probability must be in [0, 1], got {prob}")
    num = keypoints.shape[0]
    if prob == 0 or num < 2:
        return keypoints.clone()
    image_index = torch.as_tensor(image_index, device=keypoints.device)
    labeled = _labeled(keypoints)
    xy = keypoints[..., :2].to(torch.float64)
    distance_sq = ((xy[:, None] - xy[None, :]) ** 2).sum(-1)  # (N, N, K): person, other, joint
    same_image = image_index[:, None] == image_index[None, :]
    other = same_image & ~torch.eye(num, dtype=torch.bool, device=keypoints.device)
    candidate = other[..., None] & labeled[None, :, :]
    distance_sq = torch.where(candidate, distance_sq, torch.full_like(distance_sq, torch.inf))
    nearest_distance, nearest = distance_sq.min(dim=1)  # (N, K)
    has_neighbor = torch.isfinite(nearest_distance)
    moved = (_uniform(labeled.shape, generator, keypoints.device) < prob) & labeled & has_neighbor
    joint = torch.arange(keypoints.shape[1], device=keypoints.device)
    neighbor_joints = keypoints[nearest, joint[None, :]]  # (N, K, 3)
    return torch.where(moved[..., None], neighbor_joints, keypoints)


def remove_visibility(keypoints, persons=None):
    """
    Every labeled joint v = 2 (COCO's v = 1, labeled but occluded, included), as the ``json``
    and ``model`` keypoint sources give predicted joints; unlabeled ones stay 0.

    Args:
        keypoints (Tensor): (N, K, 3) of (x, y, v).
        persons (Tensor or None): (N,) bool, the persons whose flags go; None: all.
    """
    out = keypoints.clone()
    removed = _labeled(keypoints)
    if persons is not None:
        removed = removed & persons[:, None]
    out[..., 2] = torch.where(removed, torch.full_like(out[..., 2], 2.0), out[..., 2])
    return out


@dataclass(frozen=True)
class KeypointNoise:
    """
    The simulated errors of :func:`perturb_keypoints`, as MODEL.POSE2SEG.TRAIN_KEYPOINT_NOISE
    sets them (pose2seg_d2/config.py).
    """

    sigma_scale: float = 0.0  # Gaussian displacement, in units of sigma_k sqrt(area)
    drop_prob: float = 0.0  # per labeled joint
    swap_prob: float = 0.0  # per left/right pair or per person (swap_unit)
    swap_unit: str = "pair"
    neighbor_prob: float = 0.0  # per labeled joint: the nearest other person's same joint
    keep_visibility: bool = True  # False: every labeled joint v = 2
    keep_visibility_prob: float = 0.0  # with keep_visibility False: per person, its flags stay
    person_prob: float = 1.0  # per person: the errors apply (else its true skeleton, flags aside)

    def __post_init__(self):
        for name in ("drop_prob", "swap_prob", "neighbor_prob", "keep_visibility_prob", "person_prob"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name.upper()} must be in [0, 1], got {value}")
        if self.sigma_scale < 0:
            raise ValueError(f"SIGMA_SCALE must be >= 0, got {self.sigma_scale}")
        if self.swap_unit not in SWAP_UNITS:
            raise ValueError(f"SWAP_UNIT must be one of {SWAP_UNITS}, got {self.swap_unit!r}")


def perturb_keypoints(
    keypoints, areas, image_index, noise, sigmas=COCO_PERSON_OKS_SIGMAS, flip_indices=None, generator=None
):
    """
    All of ``noise``'s errors, in this order: joints moved onto neighbors (from the true
    skeletons), left/right swaps, Gaussian displacement, drops; each person keeps these with
    probability ``person_prob`` (else its true skeleton); then the visibility removed (from each
    person but those kept with probability ``keep_visibility_prob``).

    Args:
        keypoints (Tensor): (N, K, 3) of (x, y, v).
        areas (Tensor): (N,) segment areas in pixels of the keypoints' frame.
        image_index (Tensor): (N,) long, each person's image (neighbors are searched within it).
        noise (KeypointNoise): the errors.
        sigmas, flip_indices: as :func:`jitter_keypoints` and :func:`swap_left_right`.

    Returns:
        Tensor (N, K, 3).
    """
    out = move_onto_neighbors(keypoints, image_index, noise.neighbor_prob, generator)
    out = swap_left_right(out, noise.swap_prob, noise.swap_unit, flip_indices, generator)
    out = jitter_keypoints(out, areas, noise.sigma_scale, sigmas, generator)
    out = drop_keypoints(out, noise.drop_prob, generator)
    if noise.person_prob < 1.0:
        perturbed = _uniform(keypoints.shape[:1], generator, keypoints.device) < noise.person_prob
        out = torch.where(perturbed[:, None, None], out, keypoints)
    if noise.keep_visibility:
        return out
    removed = None
    if noise.keep_visibility_prob > 0.0:
        removed = _uniform(keypoints.shape[:1], generator, keypoints.device) >= noise.keep_visibility_prob
    return remove_visibility(out, removed)
