"""Truncated BPTT helper and gradient clipping."""

import pytest
import torch

from rnnlab.layers import LSTM, SimpleRNN, detach_state
from rnnlab.training.tbptt import clip_gradients, truncated_bptt


def test_tbptt_gradient_equals_truncated_gradient_by_hand():
    torch.manual_seed(0)
    layer = SimpleRNN(2, 3, return_sequences=True, return_state=True).double()
    x = torch.randn(2, 7, 2, dtype=torch.float64)
    y = torch.randn(2, 7, 3, dtype=torch.float64)

    def mse(out, target):
        return ((out - target) ** 2).sum()

    truncated_bptt(lambda xc, s: layer(xc, initial_state=s), mse, x, y, k=3)
    got = [p.grad.clone() for p in layer.parameters()]

    # By hand: chunks [0,3), [3,6), [6,7); state detached at each boundary.
    layer.zero_grad()
    total, state = 0.0, None
    for t0 in (0, 3, 6):
        out, new = layer(x[:, t0 : t0 + 3], initial_state=state)
        total = total + mse(out, y[:, t0 : t0 + 3])
        state = new.detach()
    want = torch.autograd.grad(total, list(layer.parameters()))
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, atol=1e-12, rtol=0)

    # ... and differs from the full gradient (the truncation is real).
    layer.zero_grad()
    full = torch.autograd.grad(mse(layer(x)[0], y), list(layer.parameters()))
    assert not all(torch.allclose(g, f) for g, f in zip(got, full, strict=True))


def test_tbptt_with_optimizer_steps_once_per_chunk_and_detaches():
    layer = LSTM(2, 3, return_sequences=True, return_state=True)
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    x, y = torch.randn(4, 10, 2), torch.randn(4, 10, 3)
    losses, state = truncated_bptt(
        lambda xc, s: layer(xc, initial_state=s),
        torch.nn.functional.mse_loss,
        x,
        y,
        k=4,
        optimizer=opt,
        max_norm=1.0,
    )
    assert len(losses) == 3
    assert not state.h.requires_grad and not state.c.requires_grad
    assert detach_state(state).h.shape == (4, 3)


def test_clip_by_norm_and_value():
    p = torch.nn.Parameter(torch.zeros(4))
    p.grad = torch.tensor([3.0, 4.0, 0.0, 0.0])
    norm = clip_gradients([p], max_norm=1.0)
    assert norm == pytest.approx(5.0)
    torch.testing.assert_close(p.grad.norm(), torch.tensor(1.0))
    p.grad = torch.tensor([3.0, -4.0, 0.5, 0.0])
    clip_gradients([p], max_value=1.0)
    torch.testing.assert_close(p.grad, torch.tensor([1.0, -1.0, 0.5, 0.0]))


@pytest.mark.parametrize("kwargs", [{"max_norm": 0}, {"max_value": -1.0}])
def test_clip_rejects_non_positive_limits(kwargs):
    p = torch.nn.Parameter(torch.zeros(2))
    p.grad = torch.ones(2)
    with pytest.raises(ValueError, match="must be positive"):
        clip_gradients([p], **kwargs)


def test_tbptt_rejects_bad_k():
    with pytest.raises(ValueError, match="`k`"):
        truncated_bptt(
            lambda a, b: (a, b),
            torch.nn.functional.mse_loss,
            torch.zeros(1, 3, 1),
            torch.zeros(1, 3, 1),
            k=0,
        )
