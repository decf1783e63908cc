"""The ResNet of Wang et al. (2017) / Fawaz et al. (2019): one block against the equation
built from torch.nn layers ("same" padding, ReLU after the first two BatchNorms, the shortcut
projected where the width changes), padding-invariance, the kind in seq-classify."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rnnlab.models.series_classifiers import ResNet


def _randomise_norms(model: nn.Module) -> None:
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g))
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.randn(m.num_features, generator=g))
            m.bias.data.copy_(torch.randn(m.num_features, generator=g))


def _same(conv: nn.Conv1d) -> nn.Conv1d:
    ref = nn.Conv1d(conv.in_channels, conv.out_channels, conv.kernel_size[0], padding="same")
    ref.load_state_dict(conv.state_dict())
    return ref


def _reference(model: ResNet, x: torch.Tensor) -> torch.Tensor:
    h = x.transpose(1, 2)
    for b in model.blocks:
        c1, c2, c3 = (_same(c) for c in b.convs)
        n1, n2, n3 = b.norms
        out = n3(c3(torch.relu(n2(c2(torch.relu(n1(c1(h))))))))
        short = b.short_norm(b.project(h) if b.project is not None else h)
        h = torch.relu(out + short)
    return model.dense(h.mean(-1))


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
def test_resnet_is_the_equation_of_three_residual_blocks():
    torch.manual_seed(0)
    model = ResNet(3, 4)
    _randomise_norms(model)
    model.eval()
    assert [b.project is not None for b in model.blocks] == [True, True, False]
    assert [b.convs[0].kernel_size[0] for b in model.blocks] == [8, 8, 8]
    assert [c.kernel_size[0] for c in model.blocks[0].convs] == [8, 5, 3]
    assert [b.convs[0].out_channels for b in model.blocks] == [64, 128, 128]
    x = torch.randn(2, 11, 3)
    with torch.no_grad():
        assert torch.allclose(model(x), _reference(model, x), atol=1e-5)


def test_resnet_ignores_padding():
    torch.manual_seed(0)
    model = ResNet(2, 3)
    _randomise_norms(model)
    model.eval()
    x = torch.randn(1, 7, 2)
    padded = torch.cat([x, torch.randn(1, 5, 2)], dim=1)  # garbage past the length
    with torch.no_grad():
        assert torch.allclose(model(padded, torch.tensor([7])), model(x), atol=1e-5)


def test_resnet_is_a_seq_classify_kind():
    from rnnlab.training.config import apply_overrides, load_preset
    from rnnlab.training.experiment import build_model
    from rnnlab.training.families import DataSpec

    cfg = apply_overrides(load_preset("seq-classify"), ["--data.train=x.ts", "--model.kind=resnet"])
    model = build_model(cfg, DataSpec(torch.zeros(9, 2), 3))
    assert isinstance(model, ResNet)
    out = model(torch.randn(4, 9, 2), torch.tensor([9, 5, 3, 1]))
    assert out.shape == (4, 3)
    out.sum().backward()  # trains: every parameter gets a gradient
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("channels", [1, 12])
def test_resnet_size_matches_the_architecture(channels):
    # conv k*c_in*f + f each, BatchNorm 2f trainable, projection c_in*f + f, Dense 128k + k
    def block(c, f):
        convs = (8 * c * f + f) + (5 * f * f + f) + (3 * f * f + f)
        return convs + 3 * 2 * f + 2 * f + ((c * f + f) if c != f else 0)

    want = block(channels, 64) + block(64, 128) + block(128, 128) + 128 * 2 + 2
    assert sum(p.numel() for p in ResNet(channels, 2).parameters()) == want
