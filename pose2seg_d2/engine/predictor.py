"""A predictor for one image at a time, as Detectron2's DefaultPredictor, that tells the model
which file the image came from (the "json" keypoint source finds its entries by it)."""
import os

import torch
from detectron2.engine import DefaultPredictor

from .checkpoint import check_weights_available

__all__ = ["Pose2SegPredictor"]


class Pose2SegPredictor(DefaultPredictor):
    """
    :class:`DefaultPredictor` (builds the model of ``cfg``, loads MODEL.WEIGHTS, resizes by
    INPUT.MIN_SIZE_TEST / MAX_SIZE_TEST) whose call also passes ``file_name`` and ``image_id``
    to the model. Weights that cannot be read or downloaded raise
    :class:`WeightsUnavailableError`.
    """

    def __init__(self, cfg):
        check_weights_available(cfg.MODEL.WEIGHTS)  # a clear error, before the model is built
        super().__init__(cfg)

    def __call__(self, original_image, file_name=None, image_id=None):
        """
        Args:
            original_image (ndarray): (H, W, 3) uint8 BGR (as cv2.imread reads it).
            file_name (str): the image's path, if any.
            image_id (int or str): the image's id, if any.

        Returns:
            dict: the model's output for the image (``{"instances": Instances}`` at H x W).
        """
        with torch.no_grad():
            if self.input_format == "RGB":
                original_image = original_image[:, :, ::-1]
            height, width = original_image.shape[:2]
            image = self.aug.get_transform(original_image).apply_image(original_image)
            image = torch.as_tensor(image.astype("float32").transpose(2, 0, 1))
            inputs = {"image": image.to(self.cfg.MODEL.DEVICE), "height": height, "width": width}
            if file_name is not None:
                inputs["file_name"] = os.fspath(file_name)
            if image_id is not None:
                inputs["image_id"] = image_id
            return self.model([inputs])[0]
