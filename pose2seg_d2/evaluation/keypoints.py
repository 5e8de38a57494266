"""COCO keypoint AP of a bottom-up keypoint model, its results file carrying each joint's visibility."""
from detectron2.evaluation import COCOEvaluator

__all__ = ["KeypointVisibilityEvaluator", "visibility_flags"]


def visibility_flags(keypoints, visibility, threshold):
    """
    COCO's v of predicted joints.

    Args:
        keypoints (Tensor): (N, K, 3) of (x, y, score), score 0 for a joint not found.
        visibility (Tensor): (N, K) predicted probability that each joint is visible.
        threshold (float): a found joint is visible at or above it.

    Returns:
        Tensor (N, K) long: 2 visible, 1 covered, 0 not found.
    """
    found = keypoints[..., 2] > 0
    return found.long() * (1 + (visibility >= threshold).long())


class KeypointVisibilityEvaluator(COCOEvaluator):
    """
    Detectron2's COCOEvaluator on the ``keypoints`` task (COCO keypoint AP by OKS) whose
    results (``coco_instances_results.json`` in ``output_dir``) also give each person's
    ``keypoint_visibility``: K numbers, COCO's v of each joint (2 visible, 1 covered, 0 not
    found), from the outputs' ``pred_keypoint_visibility`` and ``visibility_threshold``. The
    "json" keypoint source reads the file, flags included; other readers ignore the field.
    """

    def __init__(self, dataset_name, visibility_threshold=0.5, kpt_oks_sigmas=(), distributed=True, output_dir=None):
        super().__init__(
            dataset_name, tasks=("keypoints",), distributed=distributed, output_dir=output_dir,
            kpt_oks_sigmas=tuple(kpt_oks_sigmas),
        )  # fmt: skip
        self._visibility_threshold = visibility_threshold

    def process(self, inputs, outputs):
        start = len(self._predictions)
        super().process(inputs, outputs)
        flags = {}
        for x, y in zip(inputs, outputs):
            instances = y.get("instances")
            if instances is not None and instances.has("pred_keypoint_visibility"):
                instances = instances.to(self._cpu_device)
                v = visibility_flags(
                    instances.pred_keypoints, instances.pred_keypoint_visibility, self._visibility_threshold
                )
                flags[x["image_id"]] = v.tolist()
        for prediction in self._predictions[start:]:
            per_person = flags.get(prediction["image_id"])
            if per_person is None:
                continue
            # instances_to_coco_json keeps the instances' order
            for result, v in zip(prediction.get("instances", []), per_person):
                result["keypoint_visibility"] = v
