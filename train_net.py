#!/usr/bin/env python
"""
Train or evaluate Pose2Seg, or the Mask R-CNN baseline, with Detectron2's usual command line:

    python train_net.py --config-file configs/pose2seg_R_50_FPN_coco_persons.yaml
    python train_net.py --config-file ... --eval-only MODEL.WEIGHTS output/model_final.pth
    python train_net.py --config-file ... --eval-only MODEL.WEIGHTS ... TEST.AUG.ENABLED True
                                                            # and with test-time flip
    python train_net.py --config-file ... --num-gpus 2      # one process per GPU (or per CPU
                                                            # process with gloo, without GPUs)
"""
from detectron2.config import get_cfg
from detectron2.engine import default_argument_parser, default_setup, launch
from detectron2.evaluation import verify_results
from detectron2.utils import comm

import pose2seg_d2  # noqa: F401  (registers the model and the datasets)
from pose2seg_d2.config import add_pose2seg_config, fall_back_to_cpu
from pose2seg_d2.engine import AtomicDetectionCheckpointer, Pose2SegTrainer


def setup(args):
    cfg = get_cfg()
    add_pose2seg_config(cfg)
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    fall_back_to_cpu(cfg)
    cfg.freeze()
    default_setup(cfg, args)
    return cfg


def main(args):
    cfg = setup(args)
    if args.eval_only:
        model = Pose2SegTrainer.build_model(cfg)
        AtomicDetectionCheckpointer(model, save_dir=cfg.OUTPUT_DIR).resume_or_load(cfg.MODEL.WEIGHTS, resume=args.resume)
        results = Pose2SegTrainer.test(cfg, model)
        if cfg.TEST.AUG.ENABLED:  # also with test-time augmentation (Pose2Seg: the horizontal flip)
            results.update(Pose2SegTrainer.test_with_TTA(cfg, model))
        if comm.is_main_process():
            verify_results(cfg, results)
        return results
    trainer = Pose2SegTrainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    return trainer.train()


if __name__ == "__main__":
    args = default_argument_parser().parse_args()
    print("Command Line Args:", args)
    launch(
        main,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )
