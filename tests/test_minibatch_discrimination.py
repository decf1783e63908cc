"""MinibatchDiscrimination: cdist distances equal the broadcast formula (values and gradients);
the data-dependent kernel scale (Salimans et al. 2016) and its round trip through state_dict."""

from __future__ import annotations

import io

import pytest
import torch

from rnnlab.models.gans import MinibatchDiscrimination, MLPDiscriminator


def _broadcast_o(f: torch.Tensor, t: torch.Tensor, k: int, d: int) -> torch.Tensor:
    """The layer's former formula: a (B, B, K, D) difference tensor."""
    m = (f @ t).reshape(-1, k, d)
    l1 = (m.unsqueeze(0) - m.unsqueeze(1)).abs().sum(-1)  # (B, B, K)
    return torch.cat([f, torch.exp(-l1).sum(1) - 1.0], dim=1)


def _nn_mean(mbd: MinibatchDiscrimination, f: torch.Tensor) -> torch.Tensor:
    m = (f @ mbd.T).reshape(f.shape[0], mbd.n_kernels, mbd.kernel_dim)
    l1 = (m.unsqueeze(0) - m.unsqueeze(1)).abs().sum(-1)  # (B, B, K)
    l1 = l1 + torch.diag(torch.full((f.shape[0],), float("inf"), dtype=f.dtype))[..., None]
    return l1.min(dim=1).values.mean(0)  # (K,)


def test_cdist_equals_the_broadcast_formula_values_and_gradients():
    torch.manual_seed(0)
    k, d = 3, 4
    mbd = MinibatchDiscrimination(5, k, d, data_init=False).double()
    f = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    out = mbd(f)
    ref = _broadcast_o(f, mbd.T, k, d)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    g = torch.randn_like(out)
    got = torch.autograd.grad(out, (f, mbd.T), g)
    want = torch.autograd.grad(ref, (f, mbd.T), g)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    assert torch.autograd.gradcheck(
        lambda x, t: _with_t(mbd, x, t), (f, mbd.T.detach().clone().requires_grad_())
    )


def _with_t(mbd: MinibatchDiscrimination, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    m = (x @ t).reshape(-1, mbd.n_kernels, mbd.kernel_dim)
    o = torch.exp(-mbd._l1(m)).sum(2).transpose(0, 1) - 1.0
    return torch.cat([x, o], dim=1)


def test_first_training_forward_scales_the_mean_nearest_neighbour_distance_to_one():
    torch.manual_seed(0)
    mbd = MinibatchDiscrimination(32, 6, 5, data_init=True)
    f = torch.randn(64, 32) * 30  # large, un-normalised features: exp(-L1) ~ 0 before
    assert (_nn_mean(mbd, f) > 20).all()
    assert not bool(mbd.initialised)
    out = mbd(f)
    assert bool(mbd.initialised)
    torch.testing.assert_close(_nn_mean(mbd, f), torch.ones(6), rtol=1e-4, atol=1e-4)
    assert (out[:, 32:] > 0.1).all()  # o(x) is informative, no longer ~0
    t = mbd.T.detach().clone()
    mbd(torch.randn(64, 32))  # only the first forward rescales
    assert torch.equal(mbd.T, t)


def test_no_rescale_in_eval_mode_or_with_data_init_off():
    torch.manual_seed(0)
    f = torch.randn(8, 4) * 10
    mbd = MinibatchDiscrimination(4, 2, 3, data_init=True).eval()
    t = mbd.T.detach().clone()
    mbd(f)
    assert torch.equal(mbd.T, t) and not bool(mbd.initialised)
    off = MinibatchDiscrimination(4, 2, 3)  # the default: off
    t = off.T.detach().clone()
    off(f)
    assert torch.equal(off.T, t)


def test_the_scale_is_saved_and_a_reloaded_layer_does_not_rescale():
    torch.manual_seed(0)
    d = MLPDiscriminator((1, 4, 4), hidden=(8,), minibatch=(3, 2, True))
    x = torch.randn(10, 1, 4, 4) * 5
    d(x)
    state = d.state_dict()
    assert {"minibatch.init_scale", "minibatch.initialised", "minibatch.T"} <= set(state)
    assert bool(state["minibatch.initialised"]) and not torch.equal(
        state["minibatch.init_scale"], torch.ones(3)
    )
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    torch.manual_seed(1)
    e = MLPDiscriminator((1, 4, 4), hidden=(8,), minibatch=(3, 2, True))
    e.load_state_dict(torch.load(buf))
    e(x * 3)  # training mode, first forward: must not rescale again
    for k, v in d.state_dict().items():
        assert torch.equal(e.state_dict()[k], v), k
    torch.testing.assert_close(e(x), d(x))


def test_a_state_dict_from_before_the_scale_loads_as_initialised():
    old = {"T": torch.randn(4, 6)}
    mbd = MinibatchDiscrimination(4, 3, 2, data_init=True)
    mbd.load_state_dict(old)
    assert bool(mbd.initialised) and torch.equal(mbd.init_scale, torch.ones(3))
    mbd(torch.randn(5, 4))
    assert torch.equal(mbd.T, old["T"])


@pytest.mark.parametrize("b", [1, 2])
def test_tiny_batches(b):
    mbd = MinibatchDiscrimination(4, 2, 3, data_init=True)
    out = mbd(torch.randn(b, 4))
    assert out.shape == (b, 6) and torch.isfinite(out).all()
    assert bool(mbd.initialised) == (b >= 2)
