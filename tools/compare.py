#!/usr/bin/env python
"""
Pose2Seg against Mask R-CNN on one or more test sets: trains the models (or loads given
weights), evaluates mask AP overall and by MaxIoU bucket, times inference on the same images,
and writes results.md, results.json, grid PNGs and AP-by-MaxIoU plots into --output-dir.

    python tools/compare.py \\
        --pose2seg-config configs/synthetic/pose2seg_R_18_FPN_synthetic.yaml \\
        --mask-rcnn-config configs/synthetic/mask_rcnn_R_18_FPN_synthetic.yaml \\
        --keypoint-config configs/synthetic/keypoint_rcnn_R_18_FPN_synthetic.yaml \\
        --keypoints-only-config configs/synthetic/keypoints_only_synthetic.yaml \\
        --datasets synthetic_occluded_all_levels synthetic_occluded_test \\
        --fit-dataset synthetic_occluded_val --output-dir output/demo

The rows, on every test set: Mask R-CNN; Pose2Seg with the ground-truth keypoints; with
--keypoint-config (a keypoint model, trained here unless --keypoint-weights), Pose2Seg from
images alone: the same Pose2Seg weights with the keypoint model run inside its forward pass
(MODEL.POSE2SEG.KEYPOINT_SOURCE "bottom_up" for a BottomUpKeypoints model, its head on
Pose2Seg's own backbone features unless --no-share-backbone; "model" for a Detectron2 keypoint
model such as Keypoint R-CNN); with --keypoints-only-config, the keypoints-only reference
(skeletons drawn as filled figures, no image, nothing learned), its widths chosen on
--fit-dataset for the best mask AP there.

Each phase (set-up before this process when --started-at is given, data, each model, each test
set's evaluation) is logged with the run's expected remaining time (--expected-seconds) and
timed into results.json ("wall_time").
"""
import argparse
import logging
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from detectron2.data import DatasetCatalog  # noqa: E402
from detectron2.utils.logger import setup_logger  # noqa: E402

import pose2seg_d2  # noqa: E402, F401  (registers the models and the datasets)
from pose2seg_d2.config import load_config  # noqa: E402
from pose2seg_d2.comparison import (  # noqa: E402
    FIGURE_SCORE_THRESHOLD,
    ModelRun,
    describe_config,
    evaluate_run,
    keypoint_ap,
    train_or_load,
    write_figures,
    write_results,
)
from pose2seg_d2.comparison.phases import PhaseClock  # noqa: E402
from pose2seg_d2.engine.partial_checkpoints import shipped_training_record  # noqa: E402
from pose2seg_d2.evaluation.keypoints_only_fit import fit_keypoints_only_widths  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pose2seg-config", required=True)
    parser.add_argument("--mask-rcnn-config", required=True)
    parser.add_argument(
        "--datasets", "--dataset", nargs="+", required=True, help="registered test sets (the first is the main one)"
    )
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--pose2seg-weights", default="", help="skip training Pose2Seg; load these")
    parser.add_argument("--mask-rcnn-weights", default="", help="skip training Mask R-CNN; load these")
    parser.add_argument(
        "--keypoint-config", nargs="*", default=[],
        help="keypoint models: each adds an images-alone row (several: labeled by kind, e.g. 'bottom-up')",
    )  # fmt: skip
    parser.add_argument(
        "--keypoint-weights", nargs="*", default=[],
        help="skip training the keypoint models; load these (one per --keypoint-config, '' to train that one)",
    )  # fmt: skip
    parser.add_argument("--keypoint-max-iter", type=int, default=0, help="override its SOLVER.MAX_ITER (0: keep)")
    parser.add_argument("--no-keypoint-ap", action="store_true", help="do not measure the keypoint model's AP")
    parser.add_argument(
        "--no-share-backbone", action="store_true",
        help="a BottomUpKeypoints keypoint model runs on its own backbone (default: its head on Pose2Seg's features)",
    )  # fmt: skip
    parser.add_argument("--keypoints-only-config", default="", help="adds the keypoints-only reference row")
    parser.add_argument("--fit-dataset", default="", help="choose the keypoints-only widths here ('': keep the config's)")
    parser.add_argument("--max-iter", type=int, default=0, help="override SOLVER.MAX_ITER of both (0: keep)")
    parser.add_argument("--seed", type=int, default=None, help="SEED of every trained model (default: the configs')")
    parser.add_argument("--num-figures", type=int, default=4, help="images drawn in grids, per test set")
    parser.add_argument(
        "--figure-score-threshold", type=float, default=FIGURE_SCORE_THRESHOLD,
        help="the grids draw the masks that score at least this (demo.py's --confidence-threshold default)",
    )  # fmt: skip
    parser.add_argument(
        "--started-at", type=float, default=None,
        help="epoch seconds when the run's set-up began (make demo passes it): timed as the phase 'setup'",
    )  # fmt: skip
    parser.add_argument(
        "--expected-seconds", nargs="*", default=[], metavar="PHASE=SECONDS",
        help="what each phase usually takes, for the log's forecast of the remaining time",
    )  # fmt: skip
    parser.add_argument("--opts", nargs=argparse.REMAINDER, default=[], help="config overrides for every model")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.output_dir, exist_ok=True)
    setup_logger(output=os.path.join(args.output_dir, "log.txt"))
    setup_logger(output=os.path.join(args.output_dir, "log.txt"), name="pose2seg_d2")
    logger = logging.getLogger("pose2seg_d2")
    clock = PhaseClock(_expected_seconds(args.expected_seconds), started_at=args.started_at)
    if args.started_at is not None:
        clock.record("setup", time.time() - args.started_at)

    with clock.phase("data", "reading (on first use generating) the datasets"):
        for dataset in args.datasets:
            DatasetCatalog.get(dataset)

    # (name, keypoints, label, cfg, model); trained or loaded first, evaluated on each test set
    rows, notes, extra = [], [], {}
    for name, label, config_file, weights in (
        ("mask_rcnn", "Mask R-CNN", args.mask_rcnn_config, args.mask_rcnn_weights),
        ("pose2seg", "Pose2Seg", args.pose2seg_config, args.pose2seg_weights),
    ):
        cfg = _config(args, config_file, name, args.max_iter)
        with clock.phase(name, f"{label}: {'loading ' + weights if weights else 'training'} ({config_file})"):
            model, iters, seconds = train_or_load(cfg, weights or None)
        rows.append((name, "gt" if name == "pose2seg" else None, label, cfg, model, iters, seconds))

    if len(args.keypoint_weights) not in (0, len(args.keypoint_config)):
        raise SystemExit(
            f"--keypoint-weights: {len(args.keypoint_weights)} given for {len(args.keypoint_config)} "
            "--keypoint-config; give one per config ('' to train that one)"
        )
    for index, keypoint_config in enumerate(args.keypoint_config):
        weights = args.keypoint_weights[index] if args.keypoint_weights else ""
        with clock.phase("keypoint_model", f"the keypoint model {keypoint_config} for Pose2Seg from images alone"):
            rows.append(_images_alone_row(args, keypoint_config, weights, len(args.keypoint_config) > 1, notes, extra))

    if args.keypoints_only_config:
        with clock.phase("keypoints_only", "the keypoints-only reference"):
            rows.append(_keypoints_only_row(args, notes, extra))

    runs = []
    for dataset in args.datasets:
        with clock.phase(f"evaluate_{dataset}", f"evaluating every row on {dataset}"):
            figures = list(range(min(args.num_figures, len(DatasetCatalog.get(dataset)))))
            for name, keypoints, label, cfg, model, iters, seconds in rows:
                logger.info(f"==> evaluating {label} on {dataset}")
                run = ModelRun(model=name, keypoints=keypoints, label=label, config=describe_config(cfg))
                run.config["iterations"] = cfg.SOLVER.MAX_ITER if iters else "-"
                run.train_iters, run.train_seconds = iters, seconds
                runs.append(evaluate_run(run, model, cfg, dataset, figures))
            write_figures(args.output_dir, dataset, runs, figures, args.figure_score_threshold)

    extra["wall_time"] = clock.summary()
    table = write_results(args.output_dir, args.datasets, runs, notes=notes, extra=extra)
    print(table)
    print(f"Results: {os.path.join(args.output_dir, 'results.md')} and results.json; figures in {args.output_dir}")
    return runs


def _images_alone_row(args, keypoint_config, keypoint_weights, several, notes, extra):
    """
    Pose2Seg's weights with the keypoint model as its source: trained here or loaded; a
    BottomUpKeypoints model's head runs on Pose2Seg's backbone features unless
    --no-share-backbone. Its train columns are the keypoint model's (a shipped partial
    checkpoint's from its record). With ``several`` keypoint models, each row's label, output
    folder and ``extra["keypoint_models"]`` key say its kind ("bottom-up", or the meta
    architecture's name).
    """
    logger = logging.getLogger("pose2seg_d2")
    kcfg = _config(args, keypoint_config, "keypoint_model", args.keypoint_max_iter)
    bottom_up = kcfg.MODEL.META_ARCHITECTURE == "BottomUpKeypoints"
    kind = "bottom-up" if bottom_up else KEYPOINT_MODEL_KINDS.get(kcfg.MODEL.META_ARCHITECTURE, kcfg.MODEL.META_ARCHITECTURE)
    folder = "keypoint_model_" + kind.replace(" ", "_").replace("-", "_").lower() if several else "keypoint_model"
    if several:
        kcfg = _config(args, keypoint_config, folder, args.keypoint_max_iter)
    logger.info(f"==> keypoint model ({kind}): {'loading ' + keypoint_weights if keypoint_weights else 'training'}")
    kmodel, kiters, kseconds = train_or_load(kcfg, keypoint_weights or None)
    kweights = keypoint_weights or os.path.join(kcfg.OUTPUT_DIR, "model_final.pth")
    shipped = shipped_training_record(kweights) if keypoint_weights else None
    if shipped is not None:
        kiters, kseconds = shipped["iterations"], shipped["train_seconds"] or 0.0
    # the keypoint model as trained, with --opts applied, for Pose2Seg to rebuild it
    kconfig = os.path.join(kcfg.OUTPUT_DIR, "config.yaml")
    os.makedirs(kcfg.OUTPUT_DIR, exist_ok=True)
    with open(kconfig, "w") as f:
        f.write(kcfg.dump())
    share = bottom_up and not args.no_share_backbone
    pose2seg_weights = args.pose2seg_weights or os.path.join(args.output_dir, "pose2seg", "model_final.pth")
    source = [
        "MODEL.POSE2SEG.KEYPOINT_SOURCE", "bottom_up" if bottom_up else "model",
        "MODEL.POSE2SEG.KEYPOINT_MODEL.CONFIG_FILE", kconfig,
        "MODEL.POSE2SEG.KEYPOINT_MODEL.WEIGHTS", kweights,
        "MODEL.POSE2SEG.KEYPOINT_MODEL.SHARE_BACKBONE", share,
    ]  # fmt: skip
    row_folder = "pose2seg_images_alone" + (folder[len("keypoint_model") :] if several else "")
    cfg = _config(args, args.pose2seg_config, row_folder, args.max_iter, source)
    model, _, _ = train_or_load(cfg, pose2seg_weights)
    described = {"kind": kind, "config": describe_keypoint_model(kcfg), "keypoint_AP": {}}
    if shipped is not None:
        described["shipped"] = {"weights": kweights, **shipped}
    if not args.no_keypoint_ap:
        for dataset in args.datasets:
            described["keypoint_AP"][dataset] = keypoint_ap(kmodel, kcfg, dataset)
    del kmodel
    extra.setdefault("keypoint_models", {})[kind] = described
    label = f"Pose2Seg (images alone, {kind})" if several else "Pose2Seg (images alone)"
    aps = ", ".join(f"{'-' if ap is None else f'{ap:.1f}'} on `{d}`" for d, ap in described["keypoint_AP"].items())
    how = "its head on Pose2Seg's own backbone features (one backbone pass)" if share else "run inside the forward pass"
    trained = (
        f" It was trained before the run ({kweights}: {kiters} iterations, {kseconds / 60:.1f} min, by "
        f"`{shipped['command']}`); the train columns are that training's." if shipped is not None else
        " Its train columns are the keypoint model's."
    )  # fmt: skip
    notes.append(
        f"{label} is the Pose2Seg row's weights ({pose2seg_weights}) with the keypoint model "
        f"{described['config']}, {how}; its time per image includes the keypoint model's.{trained}"
        + (f" The keypoint model's keypoint AP (COCO OKS): {aps}." if aps else "")
    )
    return ("pose2seg", "predicted", label, cfg, model, kiters, kseconds)


# the images-alone rows' names for keypoint models other than BottomUpKeypoints ("bottom-up")
KEYPOINT_MODEL_KINDS = {"GeneralizedRCNN": "Keypoint R-CNN"}


def _expected_seconds(pairs):
    """``["data=21", "mask_rcnn=530"]`` -> ``{"data": 21.0, "mask_rcnn": 530.0}``."""
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        try:
            out[name] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name:
            raise SystemExit(f"--expected-seconds: {pair!r} is not PHASE=SECONDS")
    return out


def _keypoints_only_row(args, notes, extra):
    """The keypoints-only reference's row, its widths chosen on --fit-dataset when given."""
    opts = []
    if args.fit_dataset:
        logging.getLogger("pose2seg_d2").info(f"==> keypoints-only reference: choosing its widths on {args.fit_dataset}")
        fit = fit_keypoints_only_widths(args.fit_dataset)
        opts = [f"MODEL.KEYPOINTS_ONLY.{k}" for k in ("ARM_WIDTH", "LEG_WIDTH", "HEAD_RADIUS")]
        opts = [x for k in opts for x in (k, fit[k.rsplit(".", 1)[1]])]
        extra["keypoints_only_fit"] = {"dataset": args.fit_dataset, **fit}
        notes.append(
            f"Keypoints only: each person's ground-truth skeleton drawn as a filled figure (no image, nothing "
            f"learned); widths chosen on `{args.fit_dataset}` for the best mask AP there ({fit['AP']:.1f}, "
            f"{fit['evaluations']} settings tried)."
        )
    cfg = _config(args, args.keypoints_only_config, "keypoints_only", 0, opts)
    model, _, _ = train_or_load(cfg)
    return ("keypoints_only", "gt", "Keypoints only", cfg, model, 0, 0.0)


def _config(args, config_file, output_name, max_iter=0, extra_opts=()):
    """``config_file`` with --opts, then OUTPUT_DIR under --output-dir, ``extra_opts``, MAX_ITER
    (0: keep) and --seed."""
    opts = list(args.opts) + ["OUTPUT_DIR", os.path.join(args.output_dir, output_name), *extra_opts]
    if max_iter:
        opts += ["SOLVER.MAX_ITER", max_iter]
    if args.seed is not None:
        opts += ["SEED", args.seed]
    return load_config(config_file, opts)


def describe_keypoint_model(cfg):
    return (
        f"{cfg.MODEL.META_ARCHITECTURE} R-{cfg.MODEL.RESNETS.DEPTH}-FPN, short side {cfg.INPUT.MIN_SIZE_TEST}, "
        f"{cfg.SOLVER.MAX_ITER} iterations at batch {cfg.SOLVER.IMS_PER_BATCH} on {', '.join(cfg.DATASETS.TRAIN)}"
    )


if __name__ == "__main__":
    main()
