"""
Which color each drawn person gets: the palette, the one style of false positives, and
:class:`PersonColors`, which keeps a person's color from one video frame to the next.
"""
import torch
from detectron2.utils.colormap import colormap

from .matching import greedy_match, keypoint_similarity

__all__ = ["FALSE_POSITIVE_COLOR", "MEMORY_FRAMES", "MIN_TRACK_SIMILARITY", "PALETTE", "PersonColors", "palette_colors"]

# RGB in [0, 1], Detectron2's colormap: well separated colors, the first ones the most
PALETTE = colormap(rgb=True, maximum=1)
# predictions that match no ground-truth person, all alike: a neutral gray
FALSE_POSITIVE_COLOR = (0.55, 0.55, 0.55)
# the least keypoint similarity (OKS) at which a person is one seen before: at 0.3 a person of
# 4,000 pixels (about 100 tall) may move by about 13 pixels from one frame to the next
MIN_TRACK_SIMILARITY = 0.3
# how many frames a person missing from the video is remembered for, to get its color back
MEMORY_FRAMES = 15


def palette_colors(indices):
    """The RGB colors (tuples in [0, 1]) of palette indices; -1 gives FALSE_POSITIVE_COLOR."""
    return [FALSE_POSITIVE_COLOR if i < 0 else tuple(PALETTE[i % len(PALETTE)]) for i in map(int, indices)]


class PersonColors:
    """
    Palette indices for the persons of consecutive video frames. Each frame's persons are
    matched (one to one, keypoint similarity at least ``min_similarity``, the most similar pair
    first) to the persons of the previous ``memory_frames`` frames, each remembered as last
    seen; a matched person keeps its index, a new one gets the next palette index that no
    remembered person holds. A person hidden for a few frames (below the confidence threshold,
    occluded) gets its color back.
    """

    def __init__(self, min_similarity=MIN_TRACK_SIMILARITY, memory_frames=MEMORY_FRAMES, palette_size=len(PALETTE)):
        if memory_frames < 1:
            raise ValueError(f"memory_frames must be at least 1 (the previous frame), got {memory_frames}")
        self.min_similarity = min_similarity
        self.memory_frames = memory_frames
        self.palette_size = palette_size
        # the remembered persons: keypoints (R, K, 3), areas (R,), palette indices (R,) and
        # how many frames ago each was last seen (R,)
        self._keypoints = None
        self._areas = torch.zeros(0)
        self._indices = torch.zeros(0, dtype=torch.long)
        self._ages = torch.zeros(0, dtype=torch.long)
        self._next = 0

    def __call__(self, keypoints, areas):
        """
        Args:
            keypoints (Tensor): (N, K, 3) of (x, y, v) of this frame's persons (v > 0: labeled),
                in the frame's coordinates.
            areas (Tensor): (N,) their areas in pixels (their masks').

        Returns:
            Tensor: (N,) int64 palette indices, distinct within the frame when N <= palette_size.
        """
        keypoints, areas = keypoints.detach().cpu().float(), areas.detach().cpu().float()
        n = len(keypoints)
        if self._keypoints is None:
            self._keypoints = keypoints[:0]
        if len(self._keypoints):
            match = greedy_match(keypoint_similarity(keypoints, self._keypoints, self._areas), self.min_similarity)
        else:
            match = torch.full((n,), -1, dtype=torch.long)
        matched = match >= 0
        indices = torch.full((n,), -1, dtype=torch.long)
        indices[matched] = self._indices[match[matched]]
        taken = set(indices[matched].tolist()) | set(self._indices.tolist())
        for i in torch.nonzero(~matched).flatten().tolist():  # the new persons, few a frame
            indices[i] = self._fresh(taken)
            taken.add(int(indices[i]))
        # remember this frame's persons and, for a while, the ones not seen in it
        unseen = torch.ones(len(self._indices), dtype=torch.bool)
        unseen[match[matched]] = False
        kept = unseen & (self._ages + 1 <= self.memory_frames)
        self._keypoints = torch.cat([keypoints, self._keypoints[kept]])
        self._areas = torch.cat([areas, self._areas[kept]])
        self._indices = torch.cat([indices, self._indices[kept]])
        self._ages = torch.cat([torch.ones(n, dtype=torch.long), self._ages[kept] + 1])
        return indices

    def _fresh(self, taken):
        """The next palette index (cycling) not in ``taken``; the next one when all are."""
        for step in range(self.palette_size):
            index = (self._next + step) % self.palette_size
            if index not in taken:
                break
        else:
            index = self._next % self.palette_size
        self._next = index + 1
        return index
