"""Every option Pose2Seg adds to a Detectron2 config."""
from detectron2.config import CfgNode as CN


def add_pose2seg_config(cfg):
    """Add the options of Pose2Seg (under cfg.MODEL.POSE2SEG) and of its training to ``cfg``."""
    _C = cfg
    _C.MODEL.POSE2SEG = CN()
    # Pose templates JSON (names, flip_map, vis_threshold, templates). "" = the package default,
    # clustered from the synthetic train split (pose2seg_d2/assets/templates_synthetic.json);
    # "pose2seg_d2://NAME" = a file shipped in pose2seg_d2/assets/, e.g.
    # "pose2seg_d2://templates_coco_release.json", the release's 3 COCO templates.
    _C.MODEL.POSE2SEG.TEMPLATES_FILE = ""
    # How every template's mirrored copy is made: "swap_rows" swaps the left and right keypoint
    # rows and keeps x (the release's: the same pose seen from behind); "geometric" also takes
    # x to 1 - x (the pose's mirror image). "release" is accepted as an alias of "swap_rows".
    _C.MODEL.POSE2SEG.TEMPLATE_MIRROR = "swap_rows"
    # Backbone feature the windows are sampled from (FPN "p2": stride 4, as in the paper).
    _C.MODEL.POSE2SEG.IN_FEATURE = "p2"
    # Aligned window (height, width) on the feature map.
    _C.MODEL.POSE2SEG.WINDOW_SIZE = (64, 64)
    # Where persons' keypoints come from at inference (KEYPOINT_SOURCE_REGISTRY):
    # "gt" = instances.gt_keypoints of the inputs (every person scores 1);
    # "json" = a COCO keypoint results file, KEYPOINTS_FILE (image_id, category_id, keypoints as
    #   51 numbers, score; optionally keypoint_visibility, 17 v of 0 not found, 1 covered, 2
    #   visible), matched to inputs by image_id, then by file stem ("000123.jpg" is image_id 123
    #   or "000123");
    # "model" = a Detectron2 keypoint model (e.g. Keypoint R-CNN), KEYPOINT_MODEL, run on each
    #   image inside the forward pass (its box score is the person score).
    # "bottom_up" = a BottomUpKeypoints model (KEYPOINT_MODEL; SHARE_BACKBONE), run inside the
    #   forward pass; its person score and per-joint scores as "model"'s, and each joint's
    #   predicted visibility as its v (2 visible, 1 covered), as the ground truth's flags.
    _C.MODEL.POSE2SEG.KEYPOINT_SOURCE = "gt"
    # KEYPOINT_SOURCE "json": the results file.
    _C.MODEL.POSE2SEG.KEYPOINTS_FILE = ""
    # KEYPOINT_SOURCE "model": the keypoint model's config file and weights ("" = its config's
    # MODEL.WEIGHTS). It runs on MODEL.DEVICE at its own INPUT.MIN_SIZE_TEST / MAX_SIZE_TEST.
    _C.MODEL.POSE2SEG.KEYPOINT_MODEL = CN()
    _C.MODEL.POSE2SEG.KEYPOINT_MODEL.CONFIG_FILE = ""
    _C.MODEL.POSE2SEG.KEYPOINT_MODEL.WEIGHTS = ""
    # KEYPOINT_SOURCE "bottom_up" (KEYPOINT_MODEL is then a BottomUpKeypoints config and
    # checkpoint): True runs only its head, on Pose2Seg's own backbone features (one backbone pass
    # from image to masks; both checkpoints must hold the same backbone, e.g. the same frozen
    # pretrained one, which is checked); False runs the whole model on each image at its own
    # test size.
    _C.MODEL.POSE2SEG.KEYPOINT_MODEL.SHARE_BACKBONE = False
    # "json" and "model": a predicted keypoint is labeled (v = 2) when its confidence (the third
    # value) is >= this, else unlabeled. Detectron2's keypoint models give heatmap probabilities
    # (a softmax normalized over the pooled ROI; its visualizer draws keypoints from 0.05): a
    # weakly trained model scores most keypoints below 0.05, so lower this for one (the synthetic
    # config uses 0).
    _C.MODEL.POSE2SEG.KEYPOINT_CONFIDENCE_THRESHOLD = 0.05
    # "json" and "model": persons scoring below this, or with fewer labeled keypoints than
    # MIN_CONFIDENT_KEYPOINTS (a template fit needs 3), are not segmented.
    _C.MODEL.POSE2SEG.MIN_PERSON_SCORE = 0.0
    _C.MODEL.POSE2SEG.MIN_CONFIDENT_KEYPOINTS = 3
    # Score of each predicted mask: "person_x_mask" = the person's keypoint score (1 for "gt")
    # times the mask's own confidence, the mean probability over the window pixels at or above
    # MASK_THRESHOLD (0 when there are none); "person" = the person's keypoint score alone.
    # Instances are returned sorted by this score, highest first.
    _C.MODEL.POSE2SEG.SCORE = "person_x_mask"

    # How each person's window is chosen (POSE2SEG_ALIGNER_REGISTRY):
    # "PoseAffineAligner" = Affine-Align by pose templates (the paper);
    # "KeypointBoxAligner" = ROIAlign over the keypoints' box (the paper's ablation).
    _C.MODEL.POSE2SEG.ALIGNER = "PoseAffineAligner"
    # Affine-Align: a template must cover every keypoint the person shows (the "hard" rule).
    _C.MODEL.POSE2SEG.HARD_RULE = True
    # Affine-Align, persons no template fits: "whole_map" squeezes the whole feature map into the
    # window, aspect kept (the release's fallback); "keypoint_box" fits the labeled keypoints'
    # box, grown by FALLBACK_BOX_ENLARGE, each side at least 1/8 of the feature map's longer
    # side, aspect kept. "release" is accepted as an alias of "whole_map".
    _C.MODEL.POSE2SEG.FALLBACK = "whole_map"
    # FALLBACK "keypoint_box": the labeled keypoints' box is grown by this factor about its
    # center.
    _C.MODEL.POSE2SEG.FALLBACK_BOX_ENLARGE = 1.25
    # ALIGNER "KeypointBoxAligner" only: the labeled keypoints' box is grown by this factor about
    # its center, each side at least 1/8 of the feature map's longer side, then stretched to the
    # window.
    _C.MODEL.POSE2SEG.BOX_ENLARGE = 1.2
    # Training augmentation of every window, on top of the chosen transform: rotation (degrees),
    # scale factor and shift (fraction of the window side), each uniform in its range.
    _C.MODEL.POSE2SEG.AUGMENT = True
    _C.MODEL.POSE2SEG.AUG_ANGLE = (-30.0, 30.0)
    _C.MODEL.POSE2SEG.AUG_SCALE = (0.8, 1.2)
    _C.MODEL.POSE2SEG.AUG_TRANSLATE = (-0.1, 0.1)
    # Training on a pose estimator's errors (pose2seg_d2/pose/keypoint_noise.py): the keypoints
    # the model is given in training are perturbed, all persons of a batch at once, before the
    # persons are sampled; the mask targets stay the true masks. Draws come from torch's global
    # generator (seeded by SEED). Applied in this order: NEIGHBOR_PROB, SWAP_PROB, SIGMA_SCALE,
    # DROP_PROB, PERSON_PROB, KEEP_VISIBILITY(_PROB). With ENABLED alone, the defaults below give errors of the
    # size of a fair pose estimator's.
    _C.MODEL.POSE2SEG.TRAIN_KEYPOINT_NOISE = CN()
    _C.MODEL.POSE2SEG.TRAIN_KEYPOINT_NOISE.ENABLED = False
    # Each labeled joint's x and y move by independent Gaussians of standard deviation
    # SIGMA_SCALE x sigma_k x sqrt(area): sigma_k COCO's per-joint OKS constant as pycocotools
    # lists it (0.026 for the nose; the OKS itself uses 2 sigma_k), area the person's mask area
    # in the mapped image. A joint's expected OKS is 1 / (1 + SIGMA_SCALE^2 / 4): 0.8 at 1.
    _C.MODEL.POSE2SEG.TRAIN_KEYPOINT_NOISE.SIGMA_SCALE = 1.0
    # Each labeled joint becomes unlabeled (0, 0, 0) with this probability.
    _C.MODEL.POSE2SEG.TRAIN_KEYPOINT_NOISE.DROP_PROB = 0.1
    # Left and right joints trade places (through the flip map) with this probability, for each
    # left/right pair of each person (SWAP_UNIT "pair") or for each person whole ("person").
    _C.MODEL.POSE2SEG.TRAIN_KEYPOINT_NOISE.SWAP_PROB = 0.02
    _C.MODEL.POSE2SEG.TRAIN_KEYPOINT_NOISE.SWAP_UNIT = "pair"
    # Each labeled joint takes, with this probability, the same joint of another person of the
    # image (of those with it labeled, the one whose joint is nearest).
    _C.MODEL.POSE2SEG.TRAIN_KEYPOINT_NOISE.NEIGHBOR_PROB = 0.02
    # False: every labeled joint gets v = 2 (COCO's v = 1, occluded, included), as the "json"
    # and "model" keypoint sources give predicted joints; True: v as annotated.
    _C.MODEL.POSE2SEG.TRAIN_KEYPOINT_NOISE.KEEP_VISIBILITY = False
    # With KEEP_VISIBILITY False, each person keeps its annotated v with this probability, so the
    # model learns to use the flags where a source gives them (the "gt" source, the "bottom_up"
    # one's predicted visibility) and to do without them elsewhere.
    _C.MODEL.POSE2SEG.TRAIN_KEYPOINT_NOISE.KEEP_VISIBILITY_PROB = 0.0
    # Each person's skeleton takes the errors above with this probability, else stays true (its
    # flags as KEEP_VISIBILITY says): 1 = every person perturbed.
    _C.MODEL.POSE2SEG.TRAIN_KEYPOINT_NOISE.PERSON_PROB = 1.0
    # Training from a pose estimator's keypoints (pose2seg_d2/data/train_keypoints.py): a COCO
    # keypoint results file for the images of DATASETS.TRAIN ("" = off; tools/predict_keypoints.py
    # writes one). Its persons pass the "json" source's filters (KEYPOINT_CONFIDENCE_THRESHOLD,
    # MIN_PERSON_SCORE, MIN_CONFIDENT_KEYPOINTS), then each ground-truth person takes the
    # predicted skeleton matched to it one-to-one by OKS (COCO's greedy matching, highest person
    # score first), joints below the confidence threshold unlabeled. Its mask stays the truth.
    _C.MODEL.POSE2SEG.TRAIN_KEYPOINTS_FILE = ""
    # A match needs an OKS of at least this (0.5: COCO's AP50 threshold).
    _C.MODEL.POSE2SEG.TRAIN_KEYPOINTS_MIN_OKS = 0.5
    # Ground-truth persons no prediction matches: "keep_gt" (train on their annotated keypoints)
    # or "drop" (they are no training instance: annotation and mask left out of the record).
    _C.MODEL.POSE2SEG.TRAIN_KEYPOINTS_UNMATCHED = "keep_gt"

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
    # Inference: the head and the warp-back of the masks take this many persons at a time (0:
    # all at once), so that a crowd's memory stays bounded; the masks are the same either way.
    # The release-width head holds about 45 MiB a person at 800 px (measured on the CPU,
    # benchmarks/bench_crowd.py): 32 a chunk hold about 1.5 GiB, safe on a 16 or 24 GB GPU
    # (200 persons on the CPU: 1.7 GiB at the peak instead of 9 GiB, in no more time).
    _C.MODEL.POSE2SEG.TEST_PERSONS_PER_CHUNK = 32
    # Inference: a pixel belongs to the person where the warped-back probability is >= this
    # (in (0, 1]).
    _C.MODEL.POSE2SEG.MASK_THRESHOLD = 0.5
    # Run the backbone and the SegModule channels-last (NHWC) on CUDA too, weights included (on
    # the CPU they always run so). On GPUs with tensor cores, convolutions in reduced precision
    # (AUTOCAST) are fastest channels-last; benchmarks/README.md says what it gives.
    _C.MODEL.POSE2SEG.CHANNELS_LAST = False
    # Inference on CUDA: run the backbone and the SegModule under torch.autocast in this dtype:
    # "" (off, float32), "bf16" or "fp16". Keypoint geometry, sampling and the mask warp-back
    # stay in float32/float64. Ignored on the CPU and in training (for mixed-precision training
    # use Detectron2's SOLVER.AMP.ENABLED, whose trainer also scales the loss).
    _C.MODEL.POSE2SEG.AUTOCAST = ""
    # Inference: compile the geometry around the network (template fit, skeleton channels,
    # affine-align, scoring, the warp-back's footprints; the warp-back itself stays eager) with
    # torch.compile in this mode: "" (off, eager), "default" or "max-autotune-no-cudagraphs".
    # Fuses about 400 small ops into a few kernels; the first calls pay the compilation (tens of
    # seconds), and on the CPU it needs a C++ compiler. Training stays eager.
    # benchmarks/README.md says what it gives.
    _C.MODEL.POSE2SEG.COMPILE = ""

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
    # Normalization after every conv ("BN", "GN", "SyncBN", "FrozenBN", "" for none).
    _C.MODEL.POSE2SEG.SEG_MODULE.NORM = "BN"
    # The 2x upsampling before the decoder unit aligns corners (the release's
    # nn.UpsamplingBilinear2d) or not (F.interpolate's default).
    _C.MODEL.POSE2SEG.SEG_MODULE.UPSAMPLE_ALIGN_CORNERS = False

    # ReleasePose2Seg (the release's test-time conventions, configs/pose2seg_R_50_FPN_release.yaml):
    # every input image is warped into a square of this side (scaled to fit, aspect kept,
    # centered), whose whole stride-4 feature map is the fit's source.
    _C.MODEL.POSE2SEG.RELEASE_INPUT_SIZE = 512

    # Backbone pretraining without instances (META_ARCHITECTURE "DenseHumanPretraining",
    # tools/pretrain_backbone.py): person/background and keypoint heatmaps on every level.
    _C.MODEL.DENSE_PRETRAINING = CN()
    # The supervised backbone outputs (one shared head; they need equal channels).
    _C.MODEL.DENSE_PRETRAINING.IN_FEATURES = ["p2", "p3", "p4", "p5", "p6"]
    # Width of the head's two hidden 3x3 convolutions.
    _C.MODEL.DENSE_PRETRAINING.HEAD_CHANNELS = 64
    # Standard deviation of the keypoint Gaussians in input pixels (at least 0.75 feature pixels).
    _C.MODEL.DENSE_PRETRAINING.KEYPOINT_SIGMA = 6.0
    # Weight of the heatmap loss against the person/background loss.
    _C.MODEL.DENSE_PRETRAINING.KEYPOINT_LOSS_WEIGHT = 1.0
    # Heatmap pixels weigh 1 + this x target (keypoints cover few pixels).
    _C.MODEL.DENSE_PRETRAINING.KEYPOINT_POSITIVE_WEIGHT = 9.0

    # The bottom-up keypoint estimator (META_ARCHITECTURE "BottomUpKeypoints", Associative
    # Embedding; docs/method.md §7): per-joint heatmaps, tags and visibility logits on one
    # backbone level, joints grouped into persons by their tags.
    _C.MODEL.BOTTOM_UP = CN()
    # The head (BOTTOM_UP_HEAD_REGISTRY).
    _C.MODEL.BOTTOM_UP.HEAD_NAME = "AssociativeEmbeddingHead"
    # The backbone output it reads (FPN "p2": stride 4, the map Pose2Seg reads).
    _C.MODEL.BOTTOM_UP.IN_FEATURE = "p2"
    # Joints per person; must match the datasets' keypoint_names and TEST.KEYPOINT_OKS_SIGMAS
    # (when given), and 17 for a keypoint source of Pose2Seg.
    _C.MODEL.BOTTOM_UP.NUM_KEYPOINTS = 17
    # Numbers per tag (1 in the paper).
    _C.MODEL.BOTTOM_UP.TAG_DIM = 1
    # 0: free tags, as in the paper. > 0: spatial tags, each pixel's tag its own input-image
    # position (x, y) plus a predicted offset, in units of this many input pixels (TAG_DIM 2):
    # a person's joints learn to point at one place. PUSH_SIGMA and TAG_THRESHOLD are in tag units.
    _C.MODEL.BOTTOM_UP.TAG_OFFSET_UNIT = 0.0
    # Widths of the head's hidden 3x3 convolutions, and their norm ("", "BN", "GN", ...).
    _C.MODEL.BOTTOM_UP.CONV_DIMS = (128, 128)
    # Their dilations, one per convolution ([] = 1 each): a wider view at the same cost.
    _C.MODEL.BOTTOM_UP.DILATIONS = []
    _C.MODEL.BOTTOM_UP.NORM = ""
    # Standard deviation of the heatmap targets' Gaussians, in feature pixels.
    _C.MODEL.BOTTOM_UP.HEATMAP_SIGMA = 2.0
    # Heatmap loss: mean squared error, each pixel weighing 1 + this x its target (0: the
    # paper's plain mean; joints cover few pixels), times HEATMAP_LOSS_WEIGHT.
    _C.MODEL.BOTTOM_UP.HEATMAP_POSITIVE_WEIGHT = 0.0
    # "mse" (above, the paper's) or "focal": the heatmaps are logits, trained by CenterNet's
    # penalty-reduced focal loss (the joint's pixel positive, its Gaussian's neighbors hardly
    # penalized; HEATMAP_POSITIVE_WEIGHT unused) and decoded after a sigmoid.
    _C.MODEL.BOTTOM_UP.HEATMAP_LOSS = "mse"
    _C.MODEL.BOTTOM_UP.HEATMAP_LOSS_WEIGHT = 1.0
    # Weights of the tags' pull term (a person's tags about their mean) and push term (the
    # persons' mean tags apart: exp(-d^2 / (2 PUSH_SIGMA^2)) over pairs of persons of an image).
    _C.MODEL.BOTTOM_UP.PULL_LOSS_WEIGHT = 1e-3
    _C.MODEL.BOTTOM_UP.PUSH_LOSS_WEIGHT = 1e-3
    _C.MODEL.BOTTOM_UP.PUSH_SIGMA = 1.0
    # Weight of the visibility loss: binary cross-entropy at the labeled joints, visible (v = 2)
    # against covered (v = 1).
    _C.MODEL.BOTTOM_UP.VISIBILITY_LOSS_WEIGHT = 1e-2
    # In it a covered joint weighs this much, a visible one 1 (covered joints are the fewer:
    # about a quarter of the labeled ones in the synthetic data).
    _C.MODEL.BOTTOM_UP.VISIBILITY_COVERED_WEIGHT = 1.0
    # Decoding: at most this many heatmap peaks per joint and persons per image.
    _C.MODEL.BOTTOM_UP.MAX_PERSONS = 30
    # Decoding: a heatmap peak (a pixel equal to its 3x3 max-pool) is a joint when its value is
    # >= this (> 0: a joint scoring 0 is one not found).
    _C.MODEL.BOTTOM_UP.DETECTION_THRESHOLD = 0.1
    # Decoding: a joint joins a person when its tag is within this distance of the person's mean
    # tag (minimum-cost matching, joint type by joint type); else it starts a person.
    _C.MODEL.BOTTOM_UP.TAG_THRESHOLD = 1.0
    # Decoding: the joint types in the order they are grouped (0-based indices, every joint
    # once); [] = head, shoulders and hips first, then the limbs (the paper's order) for 17
    # COCO joints, the index order otherwise.
    _C.MODEL.BOTTOM_UP.JOINT_ORDER = []
    # Decoding: shift each joint a quarter pixel toward its higher neighbor, in x and in y.
    _C.MODEL.BOTTOM_UP.REFINE = True
    # A found joint is visible (v = 2) when its predicted visibility is >= this, else covered
    # (v = 1): in the "bottom_up" keypoint source and the results files' keypoint_visibility.
    _C.MODEL.BOTTOM_UP.VISIBILITY_THRESHOLD = 0.5

    # The keypoints-only reference (META_ARCHITECTURE "KeypointsOnlyMasks"): each person's
    # skeleton drawn as a filled figure, persons from MODEL.POSE2SEG.KEYPOINT_SOURCE. Widths in
    # units of the person's torso length (a third of the keypoints' box side without one):
    # pixels within ARM_WIDTH of an arm segment, LEG_WIDTH of a leg or torso segment, or
    # HEAD_RADIUS of the face keypoints' mean. tools/compare.py chooses them on a val split.
    _C.MODEL.KEYPOINTS_ONLY = CN()
    _C.MODEL.KEYPOINTS_ONLY.ARM_WIDTH = 0.15
    _C.MODEL.KEYPOINTS_ONLY.LEG_WIDTH = 0.2
    _C.MODEL.KEYPOINTS_ONLY.HEAD_RADIUS = 0.3

    # Read by MODEL.BACKBONE.NAME "build_frozen_resnet_fpn_backbone" (Detectron2's ResNet FPN,
    # any meta-architecture; Pose2SegTrainer refuses them with another builder): also freeze the
    # FPN, its convolutions and norms (FrozenBN), on top of MODEL.BACKBONE.FREEZE_AT (which covers
    # the ResNet only). With FREEZE_AT 5 the whole pretrained backbone is fixed and only the heads
    # learn (the synthetic configs: all rows see the same features, and a CPU trains 1.7x faster).
    _C.MODEL.BACKBONE.FREEZE_FPN = False
    # A wholly frozen backbone (FREEZE_AT 5 and FREEZE_FPN) computed channels-last under
    # torch.autocast in this dtype, in training and at test time, its features handed to the heads
    # in float32: "" (off), "bf16" or "fp16". Read by the same builder. On a CPU with AVX512-BF16,
    # "bf16" runs the synthetic configs' ResNet-18 FPN about 2x faster (benchmarks/README.md).
    # A device without arithmetic of its own for the dtype (a CPU without AVX-512, where
    # bfloat16 is emulated about 100x slower than float32) computes in float32, with a warning.
    _C.MODEL.BACKBONE.FROZEN_AUTOCAST = ""

    # Copy-paste of persons in training (Occlusion Copy & Paste; pose2seg_d2/data/copy_paste/),
    # for every model's training mapper (Pose2Seg, Mask R-CNN, Keypoint R-CNN): persons cut out of
    # other images of DATASETS.TRAIN along their masks are pasted onto the image before the
    # augmentations; persons underneath keep their visible pixels only, their covered keypoints
    # become v = 1, boxes are recomputed. With masks trained, INPUT.MASK_FORMAT must be "bitmask".
    _C.INPUT.COPY_PASTE = CN()
    _C.INPUT.COPY_PASTE.ENABLED = False
    # The probability that an image gets persons pasted.
    _C.INPUT.COPY_PASTE.PROB = 0.8
    # It then gets 1 to MAX_PASTED of them (the number uniform), each over the ones before.
    _C.INPUT.COPY_PASTE.MAX_PASTED = 2
    # Where each goes: "random" (anywhere inside the image) or "occlude" (next to and over one of
    # the image's persons: its center uniform in that person's box grown by OCCLUDE_BUFFER of its
    # size on each side; "random" when the image has none).
    _C.INPUT.COPY_PASTE.PLACEMENT = "occlude"
    _C.INPUT.COPY_PASTE.OCCLUDE_BUFFER = 0.4
    # A person covered until less than this fraction of its mask is visible is removed.
    _C.INPUT.COPY_PASTE.MIN_VISIBLE = 0.1
    # A pasted person is resized by a factor uniform in this range (capped so that it fits the
    # image) and mirrored left-right with probability FLIP_PROB (left and right keypoints swapped).
    _C.INPUT.COPY_PASTE.SCALE_RANGE = (0.8, 1.2)
    _C.INPUT.COPY_PASTE.FLIP_PROB = 0.5
    # Persons that can be pasted: not crowd regions, a box of at least MIN_SOURCE_AREA pixels and
    # at least MIN_SOURCE_KEYPOINTS labeled keypoints (3: what a pose template fit needs).
    _C.INPUT.COPY_PASTE.MIN_SOURCE_AREA = 1024
    _C.INPUT.COPY_PASTE.MIN_SOURCE_KEYPOINTS = 3

    # Test-time augmentation uses Detectron2's own keys, added here by get_cfg():
    # TEST.AUG.ENABLED makes train_net.py --eval-only evaluate a second time with it
    # (Pose2SegTrainer.test_with_TTA, results "*_TTA", OUTPUT_DIR/inference_TTA/). Pose2Seg and
    # its subclasses (Pose2SegWithTTA) flip only: each person is also segmented in the mirror
    # image, keypoints mirrored and left/right swapped, the two probability maps averaged in the
    # image before MASK_THRESHOLD; TEST.AUG.FLIP must be True, and TEST.AUG.MIN_SIZES and
    # TEST.AUG.MAX_SIZE are not read (each image at the test loader's INPUT.MIN_SIZE_TEST). Mask
    # R-CNN (GeneralizedRCNN) gets Detectron2's GeneralizedRCNNWithTTA, which reads all four.

    # Datasets (Detectron2's DATASETS.TRAIN / DATASETS.TEST name them) are registered when
    # pose2seg_d2.data is imported, before any config exists, and Detectron2 loads them through
    # DatasetCatalog.get(name) without a config; so two environment variables, not keys, steer
    # them:
    #   DETECTRON2_DATASETS: the root of every registered dataset (default "datasets", relative
    #     to the working directory);
    #   POSE2SEG_ON_INVALID_DATA: what loading a registered dataset does with an invalid record
    #     (pose2seg_d2/data/validation.py): "raise" (default: InvalidDatasetError naming the
    #     file, the image and annotation ids and the field) or "skip" (leave it out, counted
    #     and logged). The mappers raise for an invalid record either way.
    # Optimizer used by train_net.py for any model: "SGD" (Detectron2's default) or "ADAM"
    # (the release: Adam with SOLVER.BASE_LR; SOLVER.MOMENTUM is ignored).
    _C.SOLVER.OPTIMIZER = "SGD"


def load_config(config_file, opts=()):
    """Detectron2's default config with the Pose2Seg options, ``config_file`` and ``opts`` merged,
    on the CPU when it asks for CUDA that is not there (:func:`fall_back_to_cpu`)."""
    from detectron2.config import get_cfg

    cfg = get_cfg()
    add_pose2seg_config(cfg)
    cfg.merge_from_file(config_file)
    cfg.merge_from_list(list(opts))
    return fall_back_to_cpu(cfg)


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
