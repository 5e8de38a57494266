"""Partial checkpoints: a head saved alone loads over the base checkpoint it names."""
import pytest
import torch
from detectron2.layers import FrozenBatchNorm2d
from torch import nn

from pose2seg_d2.engine import AtomicDetectionCheckpointer, base_weights_of, save_partial_checkpoint


class BackboneAndHead(nn.Module):
    """A frozen backbone with FrozenBatchNorm2d (whose statistics a plain load of the head alone
    would reset) and a head."""

    def __init__(self, seed):
        super().__init__()
        torch.manual_seed(seed)
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 3), FrozenBatchNorm2d(4))
        for name in ("weight", "bias", "running_mean"):
            getattr(self.backbone[1], name).normal_()
        self.backbone[1].running_var.uniform_(0.5, 2.0)
        self.head = nn.Conv2d(4, 2, 1)


def test_a_partial_checkpoint_loads_its_base_first_then_its_own_weights(tmp_path):
    base_model, trained = BackboneAndHead(0), BackboneAndHead(1)
    trained.backbone.load_state_dict(base_model.backbone.state_dict())  # a head trained on a frozen backbone
    base = tmp_path / "base.pth"
    torch.save({"model": base_model.state_dict()}, base)
    heads = tmp_path / "heads.pth"
    assert save_partial_checkpoint(str(heads), trained.state_dict(), str(base)) == ["head.bias", "head.weight"]
    assert base_weights_of(str(heads)) == str(base)
    assert base_weights_of(str(base)) is None

    fresh = BackboneAndHead(2)
    AtomicDetectionCheckpointer(fresh).load(str(heads))
    for name, tensor in trained.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[name], tensor, rtol=0, atol=0)
    # the base's own head is not what is left: the partial checkpoint's is
    assert not torch.equal(fresh.head.weight, base_model.head.weight)


def test_partial_checkpoints_refuse_what_they_cannot_be(tmp_path):
    model = BackboneAndHead(0)
    with pytest.raises(ValueError, match="nothing is left to save"):
        save_partial_checkpoint(str(tmp_path / "x.pth"), model.state_dict(), "base.pth", ("backbone.", "head."))
    with pytest.raises(ValueError, match="needs the base checkpoint"):
        save_partial_checkpoint(str(tmp_path / "x.pth"), model.state_dict(), "")
    looping = tmp_path / "loop.pth"
    save_partial_checkpoint(str(looping), model.state_dict(), str(looping))
    with pytest.raises(ValueError, match="names itself"):
        AtomicDetectionCheckpointer(model).load(str(looping))
