"""rnnlab layers == torch.nn.RNN/LSTM/GRU with copied weights: outputs, final states and
gradients, on both the fused and the explicit path, 1 and 2 layers, bidirectional."""

import pytest
import torch
from helpers import copy_torch_direction
from torch import nn

from rnnlab.layers import GRU, LSTM, Bidirectional, SimpleRNN, Stacked

B, T, I, H = 3, 5, 4, 6
KINDS = {"rnn": (nn.RNN, SimpleRNN), "lstm": (nn.LSTM, LSTM), "gru": (nn.GRU, GRU)}
TOL = {torch.float64: 1e-10, torch.float32: 1e-5}


def build(kind, num_layers, bidirectional, implementation, dtype):
    torch_cls, ours_cls = KINDS[kind]
    ref = torch_cls(I, H, num_layers=num_layers, bidirectional=bidirectional, batch_first=True)
    ref = ref.to(dtype)  # before copying: b_ih + b_hh must be summed in `dtype`
    layers = []
    size = I
    for layer in range(num_layers):
        make = lambda size=size: ours_cls(  # noqa: E731
            size, H, return_sequences=True, return_state=True, implementation=implementation
        ).to(dtype)
        if bidirectional:
            bi = Bidirectional(make())
            copy_torch_direction(bi.forward_layer.cell, ref, layer)
            copy_torch_direction(bi.backward_layer.cell, ref, layer, reverse=True)
            layers.append(bi)
        else:
            one = make()
            copy_torch_direction(one.cell, ref, layer)
            layers.append(one)
        size = H * (2 if bidirectional else 1)
    return ref, Stacked(*layers)


def flat_states(kind, states, bidirectional):
    """Our per-layer states -> torch's (L*D, B, H) h_n (and c_n)."""
    per_dir = []
    for s in states:
        per_dir += list(s) if bidirectional else [s]
    if kind == "lstm":
        return torch.stack([s.h for s in per_dir]), torch.stack([s.c for s in per_dir])
    return torch.stack(per_dir)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("implementation", ["fused", "explicit"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_layer_matches_torch(kind, num_layers, bidirectional, implementation, dtype):
    ref, ours = build(kind, num_layers, bidirectional, implementation, dtype)
    x = torch.randn(B, T, I, dtype=dtype)
    x_ref = x.clone().requires_grad_(True)
    x_ours = x.clone().requires_grad_(True)
    out_ref, state_ref = ref(x_ref)
    out_ours, states = ours(x_ours)
    tol = TOL[dtype]
    torch.testing.assert_close(out_ours, out_ref, atol=tol, rtol=tol)
    state_ours = flat_states(kind, states, bidirectional)
    if kind == "lstm":
        torch.testing.assert_close(state_ours[0], state_ref[0], atol=tol, rtol=tol)
        torch.testing.assert_close(state_ours[1], state_ref[1], atol=tol, rtol=tol)
    else:
        torch.testing.assert_close(state_ours, state_ref, atol=tol, rtol=tol)

    # Gradients of a loss touching outputs and final states.
    w = torch.randn_like(out_ref)
    loss_ref = (out_ref * w).sum() + (state_ref[0] if kind == "lstm" else state_ref).sum()
    loss_ours = (out_ours * w).sum() + (state_ours[0] if kind == "lstm" else state_ours).sum()
    loss_ref.backward()
    loss_ours.backward()
    torch.testing.assert_close(x_ours.grad, x_ref.grad, atol=tol * 10, rtol=tol * 10)
    # weight_ih of the first layer, forward direction
    first = ours.layers[0].forward_layer if bidirectional else ours.layers[0]
    torch.testing.assert_close(
        first.cell.weight_ih.grad, ref.weight_ih_l0.grad, atol=tol * 10, rtol=tol * 10
    )
    torch.testing.assert_close(
        first.cell.weight_hh.grad, ref.weight_hh_l0.grad, atol=tol * 10, rtol=tol * 10
    )


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_fused_and_explicit_paths_agree_with_lengths(kind):
    torch.manual_seed(1)
    _, cls = KINDS[kind]
    fused = cls(I, H, return_sequences=True, return_state=True, implementation="fused").double()
    explicit = cls(I, H, return_sequences=True, return_state=True, implementation="explicit")
    explicit.double().load_state_dict(fused.state_dict())
    x = torch.randn(4, T, I, dtype=torch.float64)
    lengths = torch.tensor([5, 2, 1, 4])
    o1, s1 = fused(x, lengths)
    o2, s2 = explicit(x, lengths)
    torch.testing.assert_close(o1, o2, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(s1, s2, atol=1e-10, rtol=1e-10)


def test_relu_simple_rnn_matches_torch():
    ref = nn.RNN(I, H, nonlinearity="relu", batch_first=True).double()
    for impl in ("fused", "explicit"):
        ours = SimpleRNN(I, H, activation="relu", return_sequences=True, implementation=impl)
        ours.double()
        copy_torch_direction(ours.cell, ref)
        x = torch.randn(B, T, I, dtype=torch.float64)
        torch.testing.assert_close(ours(x), ref(x)[0], atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("cls", [SimpleRNN, LSTM, GRU])
def test_input_gradients_in_eval_mode(cls):
    layer = cls(I, H).eval()
    x = torch.randn(B, T, I, requires_grad=True)
    (g,) = torch.autograd.grad(layer(x).sum(), x)
    assert g.shape == x.shape and torch.isfinite(g).all() and g.abs().sum() > 0


@pytest.mark.gpu
@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_cuda_matches_cpu_and_eval_gradients_work(kind):
    _, cls = KINDS[kind]
    cpu = cls(I, H, return_sequences=True, return_state=True)
    gpu = cls(I, H, return_sequences=True, return_state=True).cuda()
    gpu.load_state_dict(cpu.state_dict())
    x = torch.randn(B, T, I)
    lengths = torch.tensor([5, 3, 1])
    o_cpu, _ = cpu(x, lengths)
    o_gpu, _ = gpu(x.cuda(), lengths)
    torch.testing.assert_close(o_gpu.cpu(), o_cpu, atol=1e-5, rtol=1e-5)
    gpu.eval()
    xg = x.cuda().requires_grad_(True)
    (g,) = torch.autograd.grad(gpu(xg)[0].sum(), xg)  # cuDNN backward in eval mode
    assert torch.isfinite(g).all()
