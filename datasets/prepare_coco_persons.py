#!/usr/bin/env python
"""
Build COCOPersons (docs/method.md §3) from COCO's person_keypoints_{train,val}2017.json and cluster
the pose templates of COCOPersons train, e.g.

    python datasets/prepare_coco_persons.py --coco-dir datasets/coco

writes datasets/coco/annotations/person_keypoints_{train,val}2017_pose2seg.json and
datasets/coco/annotations/pose_templates_coco_persons.json (your own templates; the COCO configs
use the release's, shipped with the package, unless MODEL.POSE2SEG.TEMPLATES_FILE names this file).
"""
import argparse
import logging
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from pose2seg_d2.data.coco_persons import prepare_coco_persons  # noqa: E402
from pose2seg_d2.pose.clustering import cluster_templates  # noqa: E402

TEMPLATES_FILENAME = "pose_templates_coco_persons.json"


def main(argv=None):
    root = os.path.expanduser(os.getenv("DETECTRON2_DATASETS", "datasets"))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--coco-dir", default=os.path.join(root, "coco"),
                   help="the COCO folder with annotations/person_keypoints_*2017.json (default $DETECTRON2_DATASETS/coco)")
    p.add_argument("--splits", nargs="+", choices=("train", "val"), default=("train", "val"))
    p.add_argument("--templates-output", default=None,
                   help=f"templates file (default COCO_DIR/annotations/{TEMPLATES_FILENAME})")
    p.add_argument("--skip-templates", action="store_true", help="do not cluster templates")
    p.add_argument("--num-clusters", type=int, default=3)
    p.add_argument("--min-keypoints", type=int, default=8)
    p.add_argument("--vis-threshold", type=float, default=0.4)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        written = prepare_coco_persons(args.coco_dir, tuple(args.splits))
        for split, path in written.items():
            print(f"COCOPersons {split}: {path}")
        if not args.skip_templates:
            if "train" not in written:
                print("note: templates are clustered from COCOPersons train; add 'train' to --splits", file=sys.stderr)
                return 0
            out = args.templates_output or os.path.join(args.coco_dir, "annotations", TEMPLATES_FILENAME)
            templates, info = cluster_templates(
                written["train"], args.num_clusters, args.min_keypoints, args.vis_threshold, args.seed, return_info=True
            )
            templates.save(out)
            print(f"templates: {info['num_poses']} poses, cluster sizes {info['cluster_sizes']} -> {out}")
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
