"""
Nothing is lost when training is killed: train_net.py runs in a subprocess that is SIGKILLed
between checkpoints, or in the middle of writing one; ``--resume`` must then continue from the
last complete checkpoint with its iteration, weights, optimizer and scheduler state, and no
partial file may ever be loaded.
"""
import copy
import glob
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from detectron2.engine import default_argument_parser

import train_net
from pose2seg_d2.engine import AtomicDetectionCheckpointer, Pose2SegTrainer

from .fixtures import register_tiny_person_dataset, tiny_pose2seg_cfg, write_templates

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
PERIOD = 3  # checkpoints after iterations 2, 5, 8, ...
STARTUP_TIMEOUT = 240


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_persons_kill")
    register_tiny_person_dataset("tiny_persons", str(root), num_images=4)
    return {"root": str(root), "templates": write_templates(str(root / "templates.json"))}


def write_config(tiny, tmp_path, output_dir):
    cfg = tiny_pose2seg_cfg(output_dir, "tiny_persons", "tiny_persons", tiny["templates"])
    cfg.merge_from_list([
        "SOLVER.MAX_ITER", 100000, "SOLVER.CHECKPOINT_PERIOD", PERIOD, "MODEL.POSE2SEG.AUGMENT", False,
        "INPUT.MIN_SIZE_TRAIN", (64,), "INPUT.MAX_SIZE_TRAIN", 96,
    ])  # fmt: skip
    path = tmp_path / "kill.yaml"
    path.write_text(cfg.dump())
    return str(path)


def start_training(tiny, tmp_path, config_file, pause=None):
    """
    ``train_net.py --config-file ...`` (single process) on the tiny dataset, in the background.
    ``pause``: (checkpoint, stage, marker), the save to stop in the middle of (see
    :func:`tests.paused_checkpoint.pause_checkpoint_write`).
    """
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {REPO!r})
        import train_net
        from detectron2.engine import default_argument_parser
        from tests.fixtures import register_tiny_person_dataset
        from tests.paused_checkpoint import pause_checkpoint_write

        register_tiny_person_dataset("tiny_persons", {tiny["root"]!r})
        pause = {tuple(pause) if pause else None!r}
        if pause:
            pause_checkpoint_write(*pause)
        train_net.main(default_argument_parser().parse_args())
    """))
    log = open(tmp_path / "train.log", "w")
    proc = subprocess.Popen(
        [sys.executable, str(script), "--config-file", config_file],
        cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    return proc, tmp_path / "train.log"


def wait_for(condition, proc, log, what):
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"training exited ({proc.returncode}) before {what}:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"timed out waiting for {what}:\n{log.read_text()[-3000:]}")
        time.sleep(0.02)


def sigkill(proc):
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL


def tagged(output_dir):
    try:
        with open(os.path.join(output_dir, "last_checkpoint")) as f:
            return f.read().strip()
    except FileNotFoundError:
        return None


def load(path):
    return torch.load(path, map_location="cpu", weights_only=False)


def assert_state_equal(a, b, where="state"):
    """Recursive equality of nested dicts / lists of tensors and numbers."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), f"{where}: {sorted(a)} != {sorted(b)}"
        for k in a:
            assert_state_equal(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_state_equal(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def resume(config_file, max_iter, monkeypatch):
    """
    ``train_net.py --config-file ... --resume SOLVER.MAX_ITER max_iter`` in this process.

    Returns:
        the trainer, with ``resumed``: its iteration, weights, optimizer and scheduler state
        right after resume_or_load.
    """
    trainers = []

    class Recording(Pose2SegTrainer):
        def resume_or_load(self, resume=True):
            super().resume_or_load(resume=resume)
            self.resumed = {
                "start_iter": self.start_iter,
                "model": {k: v.clone() for k, v in self.model.state_dict().items()},
                "optimizer": copy.deepcopy(self.optimizer.state_dict()),
                "scheduler": copy.deepcopy(self.scheduler.state_dict()),
            }
            trainers.append(self)

    monkeypatch.setattr(train_net, "Pose2SegTrainer", Recording)
    args = default_argument_parser().parse_args(
        ["--config-file", config_file, "--resume", "SOLVER.MAX_ITER", str(max_iter)]
    )
    train_net.main(args)
    (trainer,) = trainers
    assert isinstance(trainer.checkpointer, AtomicDetectionCheckpointer)
    return trainer


def assert_resumed_from(trainer, checkpoint):
    """The trainer's state right after resuming equals the checkpoint's."""
    saved = load(checkpoint)
    state = trainer.resumed
    assert state["start_iter"] == saved["iteration"] + 1
    assert_state_equal(state["model"], saved["model"], "model")
    assert_state_equal(state["optimizer"], saved["trainer"]["_trainer"]["optimizer"], "optimizer")
    assert_state_equal(state["scheduler"], saved["trainer"]["hooks"]["LRScheduler"], "scheduler")
    # the optimizer and the scheduler have taken as many steps as the iterations run
    steps = {float(s["step"]) for s in state["optimizer"]["state"].values()}
    assert steps == {saved["iteration"] + 1.0}
    assert state["scheduler"]["last_epoch"] == saved["iteration"] + 1
    # training went on from the next iteration and to the end
    iterations = [it for _, it in trainer.storage.history("total_loss").values()]
    assert min(iterations) == saved["iteration"] + 1 and trainer.iter == trainer.max_iter


def assert_every_pth_is_complete(output_dir):
    """What a user (or a tool) taking any .pth of the folder would load is a whole checkpoint."""
    for path in glob.glob(os.path.join(output_dir, "*.pth")):
        try:
            checkpoint = load(path)
        except Exception as e:
            pytest.fail(f"{path} is not a complete checkpoint: {e}")
        assert "iteration" in checkpoint and "trainer" in checkpoint, path


def test_killed_between_checkpoints_resumes_from_the_last_one(tiny, tmp_path, monkeypatch):
    out = str(tmp_path / "out")
    config_file = write_config(tiny, tmp_path, out)
    proc, log = start_training(tiny, tmp_path, config_file)
    try:
        wait_for(lambda: tagged(out) == "model_0000005.pth", proc, log, "the second checkpoint")
    finally:
        sigkill(proc)
    last = tagged(out)  # the kill may have come after a later checkpoint
    assert last is not None and last >= "model_0000005.pth"
    assert_every_pth_is_complete(out)

    iteration = load(os.path.join(out, last))["iteration"]
    trainer = resume(config_file, iteration + 3, monkeypatch)
    assert_resumed_from(trainer, os.path.join(out, last))
    assert load(os.path.join(out, "model_final.pth"))["iteration"] == iteration + 2


@pytest.mark.parametrize("stage", ["pth", "tag"])
def test_killed_while_writing_a_checkpoint_resumes_from_the_previous_one(tiny, tmp_path, monkeypatch, stage):
    """
    ``stage`` "pth": killed with half of model_0000005.pth written; "tag": killed with
    model_0000005.pth complete but last_checkpoint not yet naming it. Either way the last
    complete (tagged) checkpoint is model_0000002.pth.
    """
    out = str(tmp_path / "out")
    config_file = write_config(tiny, tmp_path, out)
    marker = str(tmp_path / "paused")
    proc, log = start_training(tiny, tmp_path, config_file, pause=("model_0000005.pth", stage, marker))
    try:
        wait_for(lambda: os.path.exists(marker), proc, log, "the paused checkpoint write")
    finally:
        sigkill(proc)

    assert tagged(out) == "model_0000002.pth"
    assert_every_pth_is_complete(out)
    partial = glob.glob(os.path.join(out, ".*.tmp"))
    assert len(partial) == 1
    if stage == "pth":
        assert os.path.basename(partial[0]).startswith(".model_0000005.pth.")
        assert not os.path.exists(os.path.join(out, "model_0000005.pth"))
        with pytest.raises(Exception):
            load(partial[0])  # truly half-written
    else:
        assert os.path.basename(partial[0]).startswith(".last_checkpoint.")

    trainer = resume(config_file, 7, monkeypatch)
    assert_resumed_from(trainer, os.path.join(out, "model_0000002.pth"))
    assert not glob.glob(os.path.join(out, ".*.tmp"))  # the partial file was cleaned up
    assert tagged(out) == "model_final.pth"
    assert load(os.path.join(out, "model_0000005.pth"))["iteration"] == 5
    assert load(os.path.join(out, "model_final.pth"))["iteration"] == 6
