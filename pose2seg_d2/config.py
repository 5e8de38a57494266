"""Every option Pose2Seg adds to a Detectron2 config."""
from detectron2.config import CfgNode as CN


def add_pose2seg_config(cfg):
    """Add the options of Pose2Seg (under cfg.MODEL.POSE2SEG) and of its training to ``cfg``."""
    _C = cfg
    _C.MODEL.POSE2SEG = CN()
    # Pose templates JSON (names, flip_map, vis_threshold, templates). "" = the package default,
    # clustered from the synthetic train split (pose2seg_d2/assets/templates_synthetic.json).
    _C.MODEL.POSE2SEG.TEMPLATES_FILE = ""
    # Backbone feature the windows are sampled from (FPN "p2": stride 4, as in the paper).
    _C.MODEL.POSE2SEG.IN_FEATURE = "p2"
    # Aligned window (height, width) on the feature map.
    _C.MODEL.POSE2SEG.WINDOW_SIZE = (64, 64)
    # Where persons' keypoints come from: "gt" = instances.gt_keypoints of the inputs.
    _C.MODEL.POSE2SEG.KEYPOINT_SOURCE = "gt"

    # How each person's window is chosen (POSE2SEG_ALIGNER_REGISTRY):
    # "PoseAffineAligner" = Affine-Align by pose templates (the paper);
    # "KeypointBoxAligner" = ROIAlign over the keypoints' box (the paper's ablation).
    _C.MODEL.POSE2SEG.ALIGNER = "PoseAffineAligner"
    # Affine-Align: a template must cover every keypoint the person shows (the "hard" rule).
    _C.MODEL.POSE2SEG.HARD_RULE = True
    # Affine-Align, persons no template fits: "release" squeezes the whole feature map into the
    # window (the original release); "keypoint_box" fits the enlarged keypoints' box.
    _C.MODEL.POSE2SEG.FALLBACK = "release"
    # KeypointBoxAligner: the labeled keypoints' box is grown by this factor about its center.
    _C.MODEL.POSE2SEG.BOX_ENLARGE = 1.2
    # Training augmentation of every window, on top of the chosen transform: rotation (degrees),
    # scale factor and shift (fraction of the window side), each uniform in its range.
    _C.MODEL.POSE2SEG.AUGMENT = True
    _C.MODEL.POSE2SEG.AUG_ANGLE = (-30.0, 30.0)
    _C.MODEL.POSE2SEG.AUG_SCALE = (0.8, 1.2)
    _C.MODEL.POSE2SEG.AUG_TRANSLATE = (-0.1, 0.1)

    # Skeleton features concatenated to the aligned features (POSE2SEG_SKELETON_REGISTRY):
    # "SkeletonFeatures" = 17 part maps + 38 affinity-field channels; "NoSkeletonFeatures" = none
    # (the paper's ablation).
    _C.MODEL.POSE2SEG.SKELETON = "SkeletonFeatures"
    # Standard deviation of the part maps' Gaussians, in window pixels.
    _C.MODEL.POSE2SEG.SKELETON_SIGMA = 3.0
    # Half-width of a limb's affinity field, in window pixels.
    _C.MODEL.POSE2SEG.SKELETON_PAF_WIDTH = 1.0
    # Negative part maps for keypoints labeled but not visible (COCO v = 1).
    _C.MODEL.POSE2SEG.SKELETON_SIGNED_OCCLUDED = True

    # The mask head in the window (POSE2SEG_HEAD_REGISTRY).
    _C.MODEL.POSE2SEG.HEAD = "SegModule"
    # At most this many persons (sampled at random) are segmented per training batch.
    _C.MODEL.POSE2SEG.MAX_INSTANCES_PER_BATCH = 8
    # Inference: a pixel belongs to the person where the warped-back probability is >= this.
    _C.MODEL.POSE2SEG.MASK_THRESHOLD = 0.5

    _C.MODEL.POSE2SEG.SEG_MODULE = CN()
    # 1 = one logit per pixel with sigmoid / binary cross-entropy; 2 = background / person with
    # softmax / cross-entropy (the release).
    _C.MODEL.POSE2SEG.SEG_MODULE.NUM_CLASSES = 1
    # Widths and depth; the defaults are the release's (about 19 GMACs per person).
    _C.MODEL.POSE2SEG.SEG_MODULE.STEM_CHANNELS = 256
    _C.MODEL.POSE2SEG.SEG_MODULE.NUM_UNITS = 10
    _C.MODEL.POSE2SEG.SEG_MODULE.BOTTLENECK_CHANNELS = 256
    _C.MODEL.POSE2SEG.SEG_MODULE.UNIT_OUT_CHANNELS = 1024
    _C.MODEL.POSE2SEG.SEG_MODULE.DECODER_BOTTLENECK_CHANNELS = 128
    _C.MODEL.POSE2SEG.SEG_MODULE.DECODER_OUT_CHANNELS = 512
    # Normalization after every conv ("BN", "GN", "SyncBN", "" for none).
    _C.MODEL.POSE2SEG.SEG_MODULE.NORM = "BN"

    # Optimizer used by train_net.py for any model: "SGD" (Detectron2's default) or "ADAM"
    # (the release: Adam with SOLVER.BASE_LR; SOLVER.MOMENTUM is ignored).
    _C.SOLVER.OPTIMIZER = "SGD"


def fall_back_to_cpu(cfg):
    """
    Set MODEL.DEVICE to "cpu" when it asks for CUDA and no CUDA device is available (with a
    warning), so the same configs run on machines with and without GPUs. Returns ``cfg``.
    """
    import logging

    import torch

    if cfg.MODEL.DEVICE.startswith("cuda") and not torch.cuda.is_available():
        logging.getLogger(__name__).warning("MODEL.DEVICE=%s but CUDA is not available: using the CPU", cfg.MODEL.DEVICE)
        frozen = cfg.is_frozen()
        cfg.defrost()
        cfg.MODEL.DEVICE = "cpu"
        if frozen:
            cfg.freeze()
    return cfg
