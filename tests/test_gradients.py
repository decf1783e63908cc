"""Gradient norms through time: exact geometric decay of a linear RNN; LSTM keeps gradients."""

import math

import matplotlib.image as mpimg
import pytest
import torch
import torch.nn.functional as F

from rnnlab.data.synthetic import adding_problem
from rnnlab.evaluation.gradients import (
    find_recurrent,
    format_gradient_table,
    gradient_norms_through_time,
    plot_gradient_norms,
)
from rnnlab.layers import GRU, LSTM, Bidirectional, Dense, Sequential, SimpleRNN


def _last_sum(pred, y):
    return (pred * y).sum()


@pytest.mark.parametrize("a", [0.5, -0.8, 1.3])
def test_linear_rnn_decays_as_power_of_a(a):
    T, H = 12, 4
    layer = SimpleRNN(3, H, activation="linear").double()
    with torch.no_grad():
        layer.cell.weight_hh.copy_(a * torch.eye(H, dtype=torch.float64))
    x = torch.randn(5, T, 3, dtype=torch.float64)
    y = torch.randn(5, H, dtype=torch.float64)
    for reduction in ("mean", "batch"):
        norms = gradient_norms_through_time(layer, x, y, _last_sum, reduction=reduction)
        assert norms.shape == (T,)
        expected = norms[-1] * abs(a) ** torch.arange(T - 1, -1, -1, dtype=torch.float64)
        torch.testing.assert_close(norms, expected, rtol=1e-12, atol=0)
    # L = sum(h_{T-1} * y): dL/dh_{T-1} is y itself, so the batch norm at the end is ||y||.
    torch.testing.assert_close(
        gradient_norms_through_time(layer, x, y, _last_sum, reduction="batch")[-1], y.norm()
    )


def _adding_models():
    torch.manual_seed(1)
    lstm = Sequential(LSTM(2, 16), Dense(16, 1))
    with torch.no_grad():
        lstm[0].cell.bias[16:32].fill_(3.0)  # a large forget-gate bias: remember
    rnn = Sequential(SimpleRNN(2, 16), Dense(16, 1))
    with torch.no_grad():
        rnn[0].cell.weight_hh.mul_(0.5)  # small recurrent weights: forget fast
    return lstm.eval(), rnn.eval()


def test_lstm_keeps_gradients_that_a_tanh_rnn_loses():
    x, y = adding_problem(32, 50, seed=0)
    lstm, rnn = _adding_models()
    g_lstm = gradient_norms_through_time(lstm, x, y, F.mse_loss)
    g_rnn = gradient_norms_through_time(rnn, x, y, F.mse_loss)
    ratio_lstm, ratio_rnn = g_lstm[0] / g_lstm[-1], g_rnn[0] / g_rnn[-1]
    assert ratio_lstm > 1e-2  # a tenth of the gradient survives 50 steps
    assert ratio_rnn < 1e-10  # the simple RNN's vanishes geometrically
    assert (g_rnn[1:] > g_rnn[:-1]).all()  # monotone decay away from the loss
    table = format_gradient_table({"LSTM": g_lstm, "SimpleRNN": g_rnn})
    assert table.splitlines()[0].split() == ["step", "LSTM", "SimpleRNN"]
    assert table.splitlines()[-1].startswith("0/last")


def test_no_parameter_grad_and_same_prediction():
    x, y = adding_problem(8, 10, seed=1)
    lstm, _ = _adding_models()
    gradient_norms_through_time(lstm, x, y, F.mse_loss)
    assert all(p.grad is None for p in lstm.parameters())
    assert lstm[0].implementation == "auto" and "step" not in vars(lstm[0].cell)


def test_lengths_go_backwards_and_bidirectional():
    B, T = 4, 6
    lengths = torch.tensor([6, 2, 4, 1])
    x, y = torch.randn(B, T, 3), torch.randn(B, 1)
    model = Sequential(GRU(3, 5, go_backwards=True), Dense(5, 1)).eval()
    norms = gradient_norms_through_time(model, x, y, F.mse_loss, lengths)
    assert norms.shape == (T,) and torch.isfinite(norms).all() and (norms > 0).all()
    batch = gradient_norms_through_time(model, x, y, F.mse_loss, lengths, reduction="batch")
    assert batch.shape == (T,) and batch[-1] > 0  # only the full-length sequence is valid
    short = torch.tensor([4, 2, 4, 1])
    tail = gradient_norms_through_time(model, x, y, F.mse_loss, short)
    assert torch.isnan(tail[4:]).all() and torch.isfinite(tail[:4]).all()

    bi = Sequential(Bidirectional(LSTM(3, 4)), Dense(8, 1)).eval()
    fwd = gradient_norms_through_time(bi, x, y, F.mse_loss, lengths, layer=0)
    bwd = gradient_norms_through_time(bi, x, y, F.mse_loss, lengths, layer=1)
    assert fwd.shape == bwd.shape == (T,)
    assert find_recurrent(bi, 1) is bi[0].backward_layer
    assert find_recurrent(bi, bi[0].backward_layer) is bi[0].backward_layer


def test_forward_fn_and_errors():
    layer = LSTM(3, 4, return_sequences=True)
    x, y = torch.randn(2, 5, 3), torch.randn(2, 5, 4)
    norms = gradient_norms_through_time(
        layer, x, y, F.mse_loss, forward_fn=lambda m, x, lengths: torch.tanh(m(x))
    )
    assert norms.shape == (5,)
    with pytest.raises(ValueError, match="`reduction`"):
        gradient_norms_through_time(layer, x, y, F.mse_loss, reduction="sum")
    with pytest.raises(ValueError, match="`layer`"):
        gradient_norms_through_time(layer, x, y, F.mse_loss, layer=3)
    with pytest.raises(ValueError, match="`x`"):
        gradient_norms_through_time(layer, x[0], y, F.mse_loss)
    with pytest.raises(RuntimeError, match="did not run"):
        gradient_norms_through_time(
            layer, x, y, F.mse_loss, forward_fn=lambda m, x, lengths: torch.zeros_like(y)
        )


def test_plot_and_table(tmp_path):
    curves = {"a": torch.tensor([1e-6, 1e-3, 0.0, 1.0]), "b": torch.ones(3)}
    path = plot_gradient_norms(curves, tmp_path / "g.png")
    assert mpimg.imread(path).ndim == 3
    table = format_gradient_table(curves, every=1)
    lines = table.splitlines()
    assert len(lines) == 1 + 4 + 1 and lines[-2].split()[-1] == "-"
    assert float(lines[-1].split()[1]) == pytest.approx(1e-6)
    with pytest.raises(ValueError, match="`curves`"):
        format_gradient_table({})
    with pytest.raises(ValueError, match="`every`"):
        format_gradient_table(curves, every=0)
    assert not math.isnan(float(lines[3].split()[1]))
