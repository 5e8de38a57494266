"""
The bottom-up keypoint head's losses: the heatmap regression, the tags' pull and push terms
(Associative Embedding's grouping loss, docs/method.md §7) and the joints' visibility.
All persons of a batch at once.
"""
import torch
import torch.nn.functional as F

__all__ = ["heatmap_loss", "heatmap_focal_loss", "values_at_joints", "tag_losses", "visibility_loss"]


def heatmap_loss(predicted, target, positive_weight=0.0):
    """
    Args:
        predicted, target (Tensor): (B, K, H, W).
        positive_weight (float): each pixel weighs 1 + this x its target.

    Returns:
        Tensor: the weighted mean squared error over every pixel of every map.
    """
    weight = 1.0 + positive_weight * target
    return (weight * (predicted - target) ** 2).mean()


def heatmap_focal_loss(logits, target, batch_index, joint_index, usable, alpha=2.0, beta=4.0):
    """
    CenterNet's penalty-reduced focal loss on heatmap logits: the pixel that holds a joint
    (:func:`~.targets.joint_pixels`) is a positive; every other pixel a negative weighing
    (1 - target)^beta, so the Gaussian's neighbors of a joint are hardly penalized.

    Args:
        logits (Tensor): (B, K, H, W), the heatmaps before the sigmoid.
        target (Tensor): (B, K, H, W) in [0, 1] (:func:`~.targets.heatmap_targets`).
        batch_index (Tensor): (P,) long; joint_index, usable (Tensor): (P, K) of
            :func:`~.targets.joint_pixels`.
        alpha, beta (float): the focal and the penalty-reduction exponents.

    Returns:
        Tensor: the sum over pixels divided by the number of positives (at least 1).
    """
    b, k, h, w = logits.shape
    positive = torch.zeros(b, k, h * w, dtype=torch.bool, device=logits.device)
    joint_type = torch.arange(k, device=logits.device)[None, :].expand_as(joint_index)
    rows = batch_index[:, None].expand_as(joint_index)
    positive[rows[usable], joint_type[usable], joint_index[usable]] = True
    positive = positive.reshape(b, k, h, w)
    log_p = F.logsigmoid(logits)
    log_not_p = F.logsigmoid(-logits)
    p = log_p.exp()
    positive_term = (1 - p) ** alpha * log_p
    negative_term = (1 - target) ** beta * p**alpha * log_not_p
    total = torch.where(positive, positive_term, negative_term).sum()
    return -total / positive.sum().clamp(min=1)


def values_at_joints(maps, batch_index, joint_index):
    """
    The values of per-joint maps at each person's joints.

    Args:
        maps (Tensor): (B, K, C, H, W), C numbers per pixel of each joint type's map.
        batch_index (Tensor): (P,) long, each person's image.
        joint_index (Tensor): (P, K) long, y * W + x of each joint's pixel
            (:func:`joint_pixels`).

    Returns:
        Tensor (P, K, C): ``maps[batch_index[p], k, :, joint_index[p, k]]``.
    """
    b, k, c, h, w = maps.shape
    flat = maps.reshape(b, k, c, h * w)
    joint_type = torch.arange(k, device=maps.device)
    return flat[batch_index[:, None], joint_type[None, :], :, joint_index]


def _per_image_mean(values, present, batch_index, num_images):
    """Per image, the mean of ``values`` (P,) over its persons where ``present`` (P,) bool;
    then the mean over the images that have any. Returns (scalar, number of such images)."""
    dtype = values.dtype
    sums = values.new_zeros(num_images).index_add(0, batch_index, torch.where(present, values, 0.0))
    counts = values.new_zeros(num_images).index_add(0, batch_index, present.to(dtype))
    has = counts > 0
    per_image = torch.where(has, sums / counts.clamp(min=1), 0.0)
    return per_image.sum() / has.sum().clamp(min=1), has


def tag_losses(tags, usable, batch_index, num_images, push_sigma=1.0):
    """
    Associative Embedding's grouping loss. Person n's reference tag r_n is the mean of its
    tags over its usable joints.

    - pull, per image: the mean over its persons of the mean over their joints of
      ||T_k(x_nk) - r_n||^2; 0 when every person's joints carry one tag.
    - push, per image: the mean over ordered pairs of distinct persons n != n' of
      exp(-||r_n - r_n'||^2 / (2 push_sigma^2)); it falls as the persons' tags move apart.

    Each is then averaged over the images that have persons (pull) or pairs of persons (push);
    0 when there are none. Persons without usable joints take no part.

    Args:
        tags (Tensor): (P, K, D) each person's tags at its joints (:func:`values_at_joints`).
        usable (Tensor): (P, K) bool.
        batch_index (Tensor): (P,) long, each person's image.
        num_images (int): B.
        push_sigma (float): the push kernel's width, in tag units.

    Returns:
        (pull, push): two scalar Tensors.
    """
    weight = usable.to(tags.dtype)
    counts = weight.sum(dim=1)  # (P,)
    present = counts > 0
    reference = (tags * weight[..., None]).sum(dim=1) / counts.clamp(min=1)[:, None]  # (P, D)
    spread = ((tags - reference[:, None]) ** 2).sum(dim=-1)  # (P, K)
    person_pull = (spread * weight).sum(dim=1) / counts.clamp(min=1)
    pull, _ = _per_image_mean(person_pull, present, batch_index, num_images)

    distance2 = ((reference[:, None] - reference[None]) ** 2).sum(dim=-1)  # (P, P)
    similarity = torch.exp(-distance2 / (2.0 * push_sigma**2))
    eye = torch.eye(len(tags), dtype=torch.bool, device=tags.device)
    pairs = (batch_index[:, None] == batch_index[None]) & present[:, None] & present[None] & ~eye
    # per person: its mean similarity to the other persons of its image; the mean of these
    # over an image's persons is the mean over the image's ordered pairs
    partners = pairs.sum(dim=1)
    person_push = torch.where(pairs, similarity, 0.0).sum(dim=1) / partners.clamp(min=1)
    push, _ = _per_image_mean(person_push, partners > 0, batch_index, num_images)
    return pull, push


def visibility_loss(logits, visible, usable, covered_weight=1.0):
    """
    Args:
        logits (Tensor): (P, K) the visibility logits at each person's joints.
        visible (Tensor): (P, K) float, 1 visible, 0 covered (:func:`visibility_targets`).
        usable (Tensor): (P, K) bool, the joints that count.
        covered_weight (float): a covered joint weighs this much, a visible one 1 (covered
            joints are the fewer).

    Returns:
        Tensor: binary cross-entropy, the weighted mean over the usable joints (0 without any).
    """
    per_joint = F.binary_cross_entropy_with_logits(logits, visible, reduction="none")
    weight = usable.to(per_joint.dtype) * torch.where(visible > 0.5, 1.0, covered_weight)
    return (per_joint * weight).sum() / weight.sum().clamp(min=1e-12)
