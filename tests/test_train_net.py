"""End-to-end: training, evaluation, resume and distributed runs on the tiny person dataset."""
import math
import os
import socket
import subprocess
import sys
import textwrap

import cv2
import pytest
import torch
from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog
from detectron2.engine import default_argument_parser

import train_net
from pose2seg_d2.config import add_pose2seg_config
from pose2seg_d2.diagnostics import calibrate_frozen_batchnorm
from pose2seg_d2.engine import Pose2SegTrainer

from .fixtures import register_tiny_person_dataset, tiny_pose2seg_cfg, write_templates

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_persons")
    register_tiny_person_dataset("tiny_persons", str(root), num_images=6)
    return {"root": str(root), "templates": write_templates(str(root / "templates.json"))}


class RecordingTrainer(Pose2SegTrainer):
    """Pose2SegTrainer whose evaluators record, per image id, how many instances they were given."""

    evaluated = {}

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        evaluator = super().build_evaluator(cfg, dataset_name, output_folder)
        process = evaluator.process

        def recording_process(inputs, outputs):
            for x, y in zip(inputs, outputs):
                cls.evaluated[x["image_id"]] = len(y["instances"])
            return process(inputs, outputs)

        evaluator.process = recording_process
        return evaluator


def persons_per_image(dataset_name):
    return {d["image_id"]: len(d["annotations"]) for d in DatasetCatalog.get(dataset_name)}


def assert_ap_is_a_percentage(segm):
    for key in ("AP", "AP50", "AP75"):
        assert isinstance(segm[key], float) and math.isfinite(segm[key]) and 0.0 <= segm[key] <= 100.0, (key, segm)


def test_training_lowers_the_mask_loss_and_eval_only_gives_segm_ap(tiny, tmp_path, monkeypatch):
    cfg = tiny_pose2seg_cfg(str(tmp_path / "run"), "tiny_persons", "tiny_persons", tiny["templates"])
    cfg.merge_from_list(["SOLVER.MAX_ITER", 40])
    config_file = tmp_path / "tiny.yaml"
    config_file.write_text(cfg.dump())

    trainer = Pose2SegTrainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()
    losses = [v for v, _ in trainer.storage.history("total_loss").values()]
    assert len(losses) == 40
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.8 * first, losses
    assert os.path.isfile(tmp_path / "run" / "model_final.pth")

    args = default_argument_parser().parse_args(
        ["--config-file", str(config_file), "--eval-only", "MODEL.WEIGHTS", str(tmp_path / "run" / "model_final.pth")]
    )
    monkeypatch.setattr(train_net, "Pose2SegTrainer", RecordingTrainer)
    RecordingTrainer.evaluated = {}
    results = train_net.main(args)
    segm = results["segm"]
    assert set(["AP", "AP50", "AP75"]) <= set(segm)
    assert all(0.0 <= segm[k] <= 100.0 for k in ("AP", "AP50", "AP75"))
    assert_ap_is_a_percentage(segm)
    # every image of the test set evaluated, with one mask per person (the "gt" keypoint source)
    assert RecordingTrainer.evaluated == persons_per_image("tiny_persons")
    # the evaluation tells the trained model from the one it started from
    untrained = train_net.main(default_argument_parser().parse_args(["--config-file", str(config_file), "--eval-only"]))
    assert_ap_is_a_percentage(untrained["segm"])
    assert segm["AP"] > untrained["segm"]["AP"] + 5, (segm, untrained["segm"])


def test_resume_continues_from_saved_weights_and_optimizer_state(tiny, tmp_path):
    out = str(tmp_path / "resume")
    cfg = tiny_pose2seg_cfg(out, "tiny_persons", "tiny_persons", tiny["templates"])
    cfg.merge_from_list(["SOLVER.MAX_ITER", 6, "SOLVER.CHECKPOINT_PERIOD", 3, "MODEL.POSE2SEG.AUGMENT", False])
    first = Pose2SegTrainer(cfg)
    first.resume_or_load(resume=False)
    first.train()
    saved = torch.load(os.path.join(out, "model_final.pth"), map_location="cpu", weights_only=False)
    assert saved["iteration"] == 5 and os.path.isfile(os.path.join(out, "model_0000002.pth"))

    cfg.merge_from_list(["SOLVER.MAX_ITER", 10])
    second = Pose2SegTrainer(cfg)
    fresh = {k: v.clone() for k, v in second.model.state_dict().items()}
    second.resume_or_load(resume=True)
    assert second.start_iter == 6
    state = second.model.state_dict()
    assert all(torch.equal(state[k], saved["model"][k]) for k in saved["model"])
    assert any(not torch.equal(fresh[k], state[k]) for k in fresh)
    opt = second.optimizer.state_dict()
    saved_opt = saved["trainer"]["_trainer"]["optimizer"]
    assert opt["state"].keys() == saved_opt["state"].keys() and len(opt["state"]) > 10
    for key, s in saved_opt["state"].items():
        assert torch.equal(opt["state"][key]["exp_avg"], s["exp_avg"])
        assert float(opt["state"][key]["step"]) == float(s["step"]) == 6
    saved_scheduler = saved["trainer"]["hooks"]["LRScheduler"]
    assert second.scheduler.state_dict()["last_epoch"] == saved_scheduler["last_epoch"] == 6

    second.train()
    assert second.iter == 10  # one past the last iteration run (9)
    final = torch.load(os.path.join(out, "model_final.pth"), map_location="cpu", weights_only=False)
    assert final["iteration"] == 9
    assert any(not torch.equal(final["model"][k], saved["model"][k]) for k in saved["model"])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_cpu_training_through_launch_keeps_ranks_equal(tiny, tmp_path):
    cfg = tiny_pose2seg_cfg(str(tmp_path / "ddp"), "tiny_persons", "tiny_persons", tiny["templates"])
    cfg.merge_from_list(["SOLVER.MAX_ITER", 4, "SOLVER.IMS_PER_BATCH", 2])
    config_file = tmp_path / "ddp.yaml"
    config_file.write_text(cfg.dump())
    script = tmp_path / "run_ddp.py"
    script.write_text(textwrap.dedent(f"""
        import sys, os, torch
        sys.path.insert(0, {REPO!r})
        import train_net
        from detectron2.engine import default_argument_parser, launch
        from detectron2.utils import comm
        from pose2seg_d2.engine import Pose2SegTrainer
        from tests.fixtures import register_tiny_person_dataset

        def main(args):
            register_tiny_person_dataset("tiny_persons", {tiny["root"]!r})
            cfg = train_net.setup(args)
            trainer = Pose2SegTrainer(cfg)
            trainer.resume_or_load(resume=False)
            trainer.train()
            model = trainer.model
            assert isinstance(model, torch.nn.parallel.DistributedDataParallel), type(model)
            params = {{k: v.detach() for k, v in model.module.named_parameters()}}
            torch.save(params, os.path.join({str(tmp_path)!r}, f"rank{{comm.get_rank()}}.pth"))

        if __name__ == "__main__":
            args = default_argument_parser().parse_args()
            launch(main, args.num_gpus, num_machines=args.num_machines, machine_rank=args.machine_rank,
                   dist_url=args.dist_url, args=(args,))
    """))
    cmd = [sys.executable, str(script), "--config-file", str(config_file), "--num-gpus", "2",
           "--dist-url", f"tcp://127.0.0.1:{free_port()}"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rank0 = torch.load(tmp_path / "rank0.pth")
    rank1 = torch.load(tmp_path / "rank1.pth")
    assert rank0.keys() == rank1.keys() and len(rank0) > 10
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)


def test_mask_rcnn_baseline_config_trains_a_step_and_evaluates(tiny, tmp_path):
    cfg = get_cfg()
    add_pose2seg_config(cfg)
    cfg.merge_from_file(os.path.join(REPO, "configs", "mask_rcnn_R_50_FPN_coco_persons.yaml"))
    cfg.merge_from_list([
        "MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", "", "DATASETS.TRAIN", ("tiny_persons",), "DATASETS.TEST", ("tiny_persons",),
        "INPUT.MIN_SIZE_TRAIN", (96,), "INPUT.MAX_SIZE_TRAIN", 160, "INPUT.MIN_SIZE_TEST", 96,
        "INPUT.MAX_SIZE_TEST", 160, "SOLVER.MAX_ITER", 1, "SOLVER.IMS_PER_BATCH", 2,
        "DATALOADER.NUM_WORKERS", 0, "OUTPUT_DIR", str(tmp_path / "mask_rcnn"),
        # keep every detection of a model one step from random, so that the evaluation has
        # predictions to score (with none, Detectron2's AP is NaN)
        "MODEL.ROI_HEADS.SCORE_THRESH_TEST", 0.0,
    ])  # fmt: skip
    trainer = Pose2SegTrainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()
    assert trainer.iter == 1 and type(trainer.model).__name__ == "GeneralizedRCNN"
    assert type(trainer.optimizer).__name__ == "SGD"
    # random weights behind FrozenBatchNorm blow the activations up until no box survives: set
    # its statistics from one image, as the benchmarks do
    image = cv2.imread(DatasetCatalog.get("tiny_persons")[0]["file_name"])
    calibrate_frozen_batchnorm(trainer.model.eval(), {"image": torch.from_numpy(image).permute(2, 0, 1)})
    RecordingTrainer.evaluated = {}
    results = RecordingTrainer.test(cfg, trainer.model)
    assert "AP" in results["segm"]
    assert_ap_is_a_percentage(results["segm"])
    # every image of the test set evaluated, with detections
    assert RecordingTrainer.evaluated.keys() == persons_per_image("tiny_persons").keys()
    assert all(n > 0 for n in RecordingTrainer.evaluated.values()), RecordingTrainer.evaluated
