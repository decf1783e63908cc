"""record_gates: recorded gates recombine into the layer's own outputs; plot_gates writes a PNG."""

import matplotlib.image as mpimg
import pytest
import torch

from rnnlab.evaluation.gates import GateTrace, plot_gates, record_gates, watch_steps
from rnnlab.layers import GRU, LSTM, Dense, Sequential, SimpleRNN

B, T, I, H = 4, 7, 3, 5
LENGTHS = torch.tensor([7, 3, 1, 5])


def _x():
    return torch.randn(B, T, I, dtype=torch.float64)


def _valid(trace: GateTrace, b: int) -> int:
    return int(trace.mask[b].sum())


def _recombine_lstm(trace: GateTrace, c0: torch.Tensor) -> None:
    act = torch.tanh
    for b in range(B):
        c = c0[b]
        for t in range(_valid(trace, b)):
            i, f, g, o = (trace[k][b, t] for k in "ifgo")
            c = f * c + i * g
            torch.testing.assert_close(c, trace["c"][b, t], atol=1e-6, rtol=0)
            torch.testing.assert_close(o * act(c), trace["h"][b, t], atol=1e-6, rtol=0)


def _recombine_gru(trace: GateTrace, h0: torch.Tensor) -> None:
    for b in range(B):
        h = h0[b]
        for t in range(_valid(trace, b)):
            r, z, n = (trace[k][b, t] for k in "rzn")
            h = (1 - z) * n + z * h
            torch.testing.assert_close(h, trace["h"][b, t], atol=1e-6, rtol=0)


@pytest.mark.parametrize("lengths", [None, LENGTHS])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_lstm_gates_reproduce_layer(lengths, go_backwards):
    layer = LSTM(I, H, go_backwards=go_backwards).double().eval()
    x = _x()
    outputs, (h_n, c_n) = layer.run(x, lengths)  # the layer's own (fused) answer
    trace = record_gates(layer, x, lengths)
    assert trace.kind == "lstm" and trace.names == ("i", "f", "g", "o", "c", "h")
    assert all(v.shape == (B, T, H) for v in trace.values.values())
    _recombine_lstm(trace, torch.zeros(B, H, dtype=x.dtype))
    torch.testing.assert_close(trace["h"], outputs, atol=1e-6, rtol=0)
    last = (trace.lengths - 1).view(B, 1, 1).expand(B, 1, H)
    torch.testing.assert_close(trace["h"].gather(1, last)[:, 0], h_n, atol=1e-6, rtol=0)
    torch.testing.assert_close(trace["c"].gather(1, last)[:, 0], c_n, atol=1e-6, rtol=0)
    torch.testing.assert_close(trace.final_state.c, c_n, atol=1e-6, rtol=0)
    if lengths is not None:
        assert torch.equal(trace.lengths, lengths)
        assert trace["f"][1, 3:].abs().sum() == 0  # padded steps are zero


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("lengths", [None, LENGTHS])
def test_gru_gates_reproduce_layer(reset_after, lengths):
    layer = GRU(I, H, reset_after=reset_after).double().eval()
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(0.1 * torch.randn_like(p))  # non-zero biases
    x = _x()
    outputs, h_n = layer.run(x, lengths)
    trace = record_gates(layer, x, lengths)
    assert trace.names == ("r", "z", "n", "h")
    _recombine_gru(trace, torch.zeros(B, H, dtype=x.dtype))
    torch.testing.assert_close(trace["h"], outputs, atol=1e-6, rtol=0)
    torch.testing.assert_close(trace.final_state, h_n, atol=1e-6, rtol=0)


def test_initial_state_and_float32():
    layer = LSTM(I, H).eval()
    x = _x().float()
    h0, c0 = torch.randn(B, H), torch.randn(B, H)
    outputs, _ = layer.run(x, LENGTHS, (h0, c0))
    trace = record_gates(layer, x, LENGTHS, (h0, c0))
    torch.testing.assert_close(trace["h"], outputs, atol=1e-5, rtol=0)
    _recombine_lstm(trace, c0)


def test_layer_restored_and_stateful_untouched():
    layer = GRU(I, H, stateful=True).eval()
    layer(_x().float())
    carried = layer._state.clone()
    record_gates(layer, _x().float())
    assert torch.equal(layer._state, carried)
    assert layer.implementation == "auto" and "step" not in vars(layer.cell)
    assert layer.uses_fused_path()


def test_watch_steps_counts_and_restores_on_error():
    layer = SimpleRNN(I, H)
    with watch_steps(layer, lambda *a: None) as count:
        layer(_x().float())
    assert count[0] == T
    with pytest.raises(RuntimeError, match="boom"), watch_steps(layer, lambda *a: None):
        raise RuntimeError("boom")
    assert "step" not in vars(layer.cell)


def test_errors_name_argument():
    with pytest.raises(TypeError, match="`layer`"):
        record_gates(Sequential(LSTM(I, H), Dense(H, 2)), _x().float())
    trace = record_gates(LSTM(I, H), _x().float())
    with pytest.raises(IndexError, match="`index`"):
        plot_gates(trace, B, "unused.png")
    with pytest.raises(KeyError, match="`name`"):
        trace["q"]


@pytest.mark.parametrize("layer", [LSTM(28, 6), GRU(28, 6)], ids=["lstm", "gru"])
def test_plot_gates_png(tmp_path, layer):
    image = torch.rand(28, 28)
    trace = record_gates(layer.eval(), image[None], torch.tensor([20]))
    path = plot_gates(trace, 0, tmp_path / "sub" / "gates.png", input_image=image)
    pixels = mpimg.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 500
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["gates.png"]  # no temp left
