"""The COCO person skeleton: keypoint names, the left/right flip map and the limbs."""

COCO_PERSON_KEYPOINT_NAMES = (
    "nose",
    "left_eye", "right_eye",
    "left_ear", "right_ear",
    "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow",
    "left_wrist", "right_wrist",
    "left_hip", "right_hip",
    "left_knee", "right_knee",
    "left_ankle", "right_ankle",
)  # fmt: skip

NUM_KEYPOINTS = len(COCO_PERSON_KEYPOINT_NAMES)

# left name -> right name
COCO_PERSON_FLIP_MAP = {
    name: "right_" + name[len("left_"):]
    for name in COCO_PERSON_KEYPOINT_NAMES
    if name.startswith("left_")
}

# The 19 limbs of the COCO skeleton as 0-based keypoint index pairs; the order fixes the
# order of the part-affinity-field channels (limb k -> channels 17 + 2k, 17 + 2k + 1).
COCO_PERSON_LIMBS = (
    (0, 1), (0, 2), (1, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 6), (5, 7), (5, 11),
    (6, 8), (6, 12), (7, 9), (8, 10), (11, 12), (11, 13), (12, 14), (13, 15), (14, 16),
)  # fmt: skip

NUM_SKELETON_CHANNELS = NUM_KEYPOINTS + 2 * len(COCO_PERSON_LIMBS)  # 55


def flip_permutation(names=COCO_PERSON_KEYPOINT_NAMES, flip_map=None):
    """
    Index permutation that swaps left and right keypoints.

    Args:
        names (sequence[str]): keypoint names in the order of the keypoint axis.
        flip_map (dict[str, str]): left name -> right name (either direction is accepted).

    Returns:
        list[int]: ``perm`` with ``flipped[:, k] = keypoints[:, perm[k]]``.
    """
    flip_map = COCO_PERSON_FLIP_MAP if flip_map is None else flip_map
    index = {name: i for i, name in enumerate(names)}
    perm = list(range(len(names)))
    for left, right in flip_map.items():
        if left not in index or right not in index:
            raise ValueError(f"flip_map pair ({left!r}, {right!r}) names a keypoint not in {list(names)}")
        perm[index[left]], perm[index[right]] = index[right], index[left]
    return perm
