"""
Pose2Seg's inference in image space: from the head's window logits to each person's mask in its
output image (the ranking, the warp-back's plan, the results), and the probability maps before
the threshold that test-time augmentation averages. A mixin of :class:`Pose2Seg`, which holds
the state these methods read (``mask_threshold``, ``score``, ``window_size``, ...).
"""
import torch
from detectron2.structures import Boxes, Instances

from ..layers import boxes_from_masks, paste_plan, read_crop_sizes, warp_windows_to_image
from ..pose import continuous_from_pixel_matrices, scale_matrix, transform_keypoints
from .mask_scores import mask_confidence, window_probabilities

__all__ = ["ImageSpaceInference"]


class ImageSpaceInference:
    """The image-space half of :class:`Pose2Seg`'s inference (see the module's docstring)."""
    def _results(self, output_sizes, counts, masks_and_boxes, scores, keypoints):
        """
        Inference's outputs: one ``{"instances": Instances}`` per image, from the per-image
        ``(masks (n, H, W) bool, boxes (n, 4))`` and the (N,) scores and (N, 17, 3) output
        keypoints of all persons, in output order.
        """
        classes = torch.zeros(len(scores), dtype=torch.long, device=self.device)
        results = []
        start = 0
        for output_size, count, (masks, boxes) in zip(output_sizes, counts, masks_and_boxes):
            members = slice(start, start + count)
            start += count
            result = Instances(output_size)
            result.pred_masks = masks
            result.pred_boxes = Boxes(boxes)
            result.scores = scores[members]
            result.pred_classes = classes[members]
            result.pred_keypoints = keypoints[members]
            results.append({"instances": result})
        return results


    # ------------------------------------------------------------------ test-time augmentation
    def image_probabilities(self, batched_inputs, persons_per_image=None, do_postprocess=True):
        """
        Each person's mask probabilities in its output image, before the threshold: what
        :meth:`inference` thresholds (its masks are these maps >= MASK_THRESHOLD), for
        test-time augmentation to combine views in image space (:class:`Pose2SegWithTTA`).

        Args:
            batched_inputs (list[dict]): as :meth:`forward`'s.
            persons_per_image (list[tuple[Tensor, Tensor]] or None): per image, (keypoints
                (n, 17, 3) in the input image's continuous coordinates, person scores (n,)), as a
                keypoint source gives them; None: the model's keypoint source's.
            do_postprocess (bool): as :meth:`inference`.

        Returns:
            tuple: ``probabilities``, per image (n, H, W) float32 at the output size, the
            persons in their given order (0 where no window reaches); the :class:`Persons` (in
            input coordinates, with their scores and counts); and the B output (height, width).
        """
        assert not self.training
        features, persons, output_sizes = self._features_and_persons(batched_inputs, do_postprocess, persons_per_image)
        if not len(persons.keypoints):
            empty = [torch.zeros(0, h, w, device=self.device) for h, w in output_sizes]
            return empty, persons, output_sizes
        logits, window_from_input = self._chunked_window_logits(
            features, persons.keypoints, persons.batch_index, persons.feature_from_input, persons.feature_sizes
        )
        probabilities = window_probabilities(logits)
        window_from_output = self._window_from_output(window_from_input, persons.input_sizes, persons.output_sizes)
        _, extents = paste_plan(
            window_from_output, self.window_size, persons.output_sizes, persons.batch_index, len(output_sizes)
        )
        maps, start = [], 0
        for (height, width), count, crop in zip(output_sizes, persons.counts, read_crop_sizes(extents)):
            # TEST_PERSONS_PER_CHUNK persons at a time: one chunk's crops and sampling grids held
            image_maps = probabilities.new_zeros((count, int(height), int(width)))
            step = self.test_persons_per_chunk or max(count, 1)
            for low in range(0, count, step):
                chunk = slice(start + low, start + min(low + step, count))
                image_maps[low : low + step] = warp_windows_to_image(
                    probabilities[chunk], window_from_output[chunk], (height, width), crop
                )
            start += count
            maps.append(image_maps)
        return maps, persons, output_sizes

    def results_from_image_probabilities(self, probabilities, persons, output_sizes):
        """
        Inference's outputs from :meth:`image_probabilities`'s maps (or an average of several
        views' maps): masks are the maps >= MASK_THRESHOLD, boxes their tight boxes, scores
        MODEL.POSE2SEG.SCORE's with the mask's confidence taken over the image pixels, keypoints
        the persons' in output coordinates; sorted by score within each image, as
        :meth:`inference` sorts them.

        Args:
            probabilities (list[Tensor]): per image, (n, H, W) in the persons' order.
            persons (Persons), output_sizes (list[tuple[int, int]]): as :meth:`image_probabilities`
                gives them.
        """
        scores = persons.scores
        if self.score == "person_x_mask":
            confidences = [mask_confidence(p, self.mask_threshold) for p in probabilities]
            scores = scores * torch.cat(confidences) if len(scores) else scores
        order = torch.argsort(scores, descending=True, stable=True)
        order = order[torch.argsort(persons.batch_index[order], stable=True)]
        keypoints = self._output_keypoints(
            persons.keypoints[order], persons.input_sizes[order], persons.output_sizes[order]
        )
        masks_and_boxes, start = [], 0
        for maps, count in zip(probabilities, persons.counts):
            # the image's persons are order[start:start + count], as indices into all persons
            within = order[start : start + count] - start
            start += count
            masks = maps[within] >= self.mask_threshold
            masks_and_boxes.append((masks, boxes_from_masks(masks)))
        return self._results(output_sizes, persons.counts, masks_and_boxes, scores[order], keypoints)

    def _rank_and_plan(
        self, logits, scores, keypoints, batch_index, input_sizes, output_sizes, window_from_input, num_images
    ):
        """
        What inference computes between the head and the warp-back, tensor work alone: the
        scores (MODEL.POSE2SEG.SCORE), the persons in output order (by image, by score within
        each image, highest first; ties keep the input order), and the warp-back's plan.

        Args:
            logits (Tensor): (N, C, h, w) the head's.
            scores (Tensor): (N,) the keypoint source's person scores.
            keypoints (Tensor): (N, 17, 3) input-image continuous coordinates.
            batch_index (Tensor): (N,) long, ascending.
            input_sizes, output_sizes (Tensor): (N, 2) float64 (height, width) of each person's
                input and output image.
            window_from_input (Tensor): (N, 3, 3) float64, input-image continuous coordinates ->
                window pixels.
            num_images (int): B.

        Returns:
            tuple, in output order: ``scores`` (N,), ``probabilities`` (N, h, w), ``keypoints``
            (N, 17, 3) in output continuous coordinates ((0, 0, 0) where unlabeled, see
            :func:`labeled_mask`), ``window_from_output`` (N, 3, 3) output pixels -> window
            pixels, and the footprints and (B, 2) crop sizes of :func:`paste_plan`.
        """
        probabilities = window_probabilities(logits)
        if self.score == "person_x_mask":
            scores = scores * mask_confidence(probabilities, self.mask_threshold)
        order = torch.argsort(scores, descending=True, stable=True)
        order = order[torch.argsort(batch_index[order], stable=True)]
        input_sizes, output_sizes = input_sizes[order], output_sizes[order]
        window_from_output = self._window_from_output(window_from_input[order], input_sizes, output_sizes)
        keypoints = self._output_keypoints(keypoints[order], input_sizes, output_sizes)
        footprints, extents = paste_plan(
            window_from_output, self.window_size, output_sizes, batch_index[order], num_images
        )
        return scores[order], probabilities[order], keypoints, window_from_output, footprints, extents

    @staticmethod
    def _window_from_output(window_from_input, input_sizes, output_sizes):
        """(N, 3, 3) float64 output-image pixels -> window pixels, from the (N, 3, 3) input-image
        continuous coordinates -> window pixels and the (N, 2) (height, width) of each person's
        input and output image."""
        return window_from_input @ continuous_from_pixel_matrices((input_sizes / output_sizes).flip(-1))

    @staticmethod
    def _output_keypoints(keypoints, input_sizes, output_sizes):
        """(N, 17, 3) input-image continuous coordinates -> output-image ones ((0, 0, 0) where
        unlabeled), the sizes as :meth:`_window_from_output` takes them."""
        return transform_keypoints(keypoints, scale_matrix(*(output_sizes / input_sizes).flip(-1).unbind(1)))
