import torch
import torch.nn.functional as F

from pose2seg_d2.modeling import SegModule


def small_head(**kwargs):
    widths = dict(stem_channels=16, num_units=2, bottleneck_channels=8, unit_out_channels=32,
                  decoder_bottleneck_channels=8, decoder_out_channels=16)  # fmt: skip
    widths.update(kwargs)
    return SegModule(**widths)


def test_release_widths_shape_and_size():
    head = SegModule()
    assert sum(p.numel() for p in head.parameters()) == 16_030_465
    assert len(head.units) == 10 and head.units[0].conv3.out_channels == 1024
    assert head.decoder.conv1.out_channels == 128 and head.decoder.conv3.out_channels == 512
    head.eval()
    with torch.no_grad():
        assert head(torch.randn(2, 311, 64, 64)).shape == (2, 1, 64, 64)


def test_output_shape_for_other_sizes_and_two_classes():
    head = small_head(in_channels=20, num_classes=2).eval()
    with torch.no_grad():
        assert head(torch.randn(3, 20, 32, 48)).shape == (3, 2, 32, 48)


def test_learns_a_toy_mask():
    torch.manual_seed(0)
    x = torch.randn(4, 311, 32, 32)
    yy, xx = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
    target = ((xx - 16) ** 2 + (yy - 12) ** 2 < 60).float().expand(4, 1, 32, 32)
    x[:, -1:] = target * 2 - 1  # one input channel tells where the mask is, like a skeleton map
    head = small_head()
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        loss = F.binary_cross_entropy_with_logits(head(x), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0], losses
