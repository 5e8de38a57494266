"""
Copy-paste of persons for training (Occlusion Copy & Paste): persons cut out of other training
images along their masks are pasted over the persons of an image, and every annotation is
rewritten to what is then seen (INPUT.COPY_PASTE; docs/method.md, "Occlusion copy-paste").

* :mod:`.compositing`: :func:`paste_persons`, the pasting itself on decoded masks and keypoints;
* :mod:`.placement`: where a pasted person goes ("random", "occlude");
* :mod:`.sources`: :class:`CopyPasteSources`, the persons of the training split to draw from;
* :mod:`.augmentation`: :class:`CopyPaste`, applied to a record's image and annotations;
* :mod:`.mappers`: the training mappers that apply it, Detectron2's and Pose2Seg's.
"""
from .augmentation import CopyPaste, keypoint_flip_indices
from .compositing import PasteResult, PersonCrop, Placement, mask_boxes, paste_persons, transform_crop
from .mappers import CopyPasteDatasetMapper, CopyPastePose2SegMapper
from .placement import PLACEMENTS, place_randomly, place_to_occlude
from .sources import CopyPasteSources

__all__ = [
    "CopyPaste",
    "CopyPasteDatasetMapper",
    "CopyPastePose2SegMapper",
    "CopyPasteSources",
    "PLACEMENTS",
    "PasteResult",
    "PersonCrop",
    "Placement",
    "keypoint_flip_indices",
    "mask_boxes",
    "paste_persons",
    "place_randomly",
    "place_to_occlude",
    "transform_crop",
]
