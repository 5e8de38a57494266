"""Pose2Seg's window predictions as person probabilities, and a mask's confidence (MODEL.POSE2SEG.SCORE)."""
__all__ = ["window_probabilities", "mask_confidence"]


def window_probabilities(logits):
    """
    Args:
        logits (Tensor): (N, C, h, w) the head's: C = 1 (a sigmoid's logit) or 2 (background and
            person, a softmax's).

    Returns:
        Tensor (N, h, w) float32: each window pixel's probability of being the person.
    """
    logits = logits.float()
    if logits.shape[1] == 1:
        return logits[:, 0].sigmoid()
    return logits.softmax(dim=1)[:, 1]


def mask_confidence(probabilities, threshold):
    """
    Args:
        probabilities (Tensor): (N, h, w) person probabilities in the windows.
        threshold (float): the mask threshold.

    Returns:
        Tensor (N,): the mean probability over each window's pixels at or above ``threshold``,
        0 for a window without any.
    """
    inside = probabilities >= threshold
    total = (probabilities * inside).sum(dim=(1, 2))
    return total / inside.sum(dim=(1, 2)).clamp(min=1)
