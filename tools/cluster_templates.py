#!/usr/bin/env python
"""
Cluster pose templates (docs/method.md §2.2) from a COCO-format keypoint JSON or a registered dataset
and write the templates JSON that ``PoseTemplates.load`` reads.

Example (the shipped default templates):

    python tools/cluster_templates.py datasets/synthetic_occluded/annotations/train.json \\
        --num-clusters 3 --min-keypoints 8 --vis-threshold 0.4 --seed 0 \\
        --output pose2seg_d2/assets/templates_synthetic.json
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from pose2seg_d2.pose.clustering import NORMALIZATIONS, cluster_templates  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help="a COCO-format keypoint JSON file, or the name of a registered dataset")
    p.add_argument("--output", required=True, help="the templates JSON to write")
    p.add_argument("--num-clusters", type=int, default=3)
    p.add_argument("--min-keypoints", type=int, default=8, help="poses with fewer labeled keypoints are skipped")
    p.add_argument("--vis-threshold", type=float, default=0.4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--normalize", choices=NORMALIZATIONS, default="box", help="the box a pose is normalized by")
    p.add_argument("--flip", action="store_true", help="also cluster mirrored poses (the release does)")
    p.add_argument("--num-init", type=int, default=10, help="k-means restarts")
    return p.parse_args(argv)


def resolve_source(name):
    """A JSON path as is; otherwise a registered dataset name -> its dataset dicts."""
    if os.path.isfile(name) or name.endswith(".json"):
        if not os.path.isfile(name):
            raise SystemExit(f"error: keypoint annotation file not found: {name}")
        return name
    import pose2seg_d2.data  # noqa: F401  (registers the datasets)
    from detectron2.data import DatasetCatalog

    if name not in DatasetCatalog.list():
        raise SystemExit(f"error: {name!r} is neither a file nor a registered dataset")
    return DatasetCatalog.get(name)


def main(argv=None):
    args = parse_args(argv)
    source = resolve_source(args.input)
    templates, info = cluster_templates(
        source,
        num_clusters=args.num_clusters,
        min_keypoints=args.min_keypoints,
        vis_threshold=args.vis_threshold,
        seed=args.seed,
        normalize=args.normalize,
        flip=args.flip,
        num_init=args.num_init,
        return_info=True,
    )
    folder = os.path.dirname(os.path.abspath(args.output))
    os.makedirs(folder, exist_ok=True)
    templates.save(args.output)
    print(
        f"clustered {info['num_poses']} poses into {args.num_clusters} templates "
        f"(sizes {info['cluster_sizes']}) -> {args.output}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
