"""RNN(cell) for a cell rnnlab does not know: the minimal IndRNN of examples/custom_cell.py,
whose output (2h) is not its state ((h, running sum) NamedTuple), checked against the cell
stepped by hand."""

import importlib.util
from pathlib import Path

import pytest
import torch
from torch import nn

from rnnlab.layers import LSTM, RNN, LSTMState, lengths_to_mask

_spec = importlib.util.spec_from_file_location(
    "custom_cell", Path(__file__).resolve().parent.parent / "examples" / "custom_cell.py"
)
_example = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_example)
IndState, IndRNNCell = _example.IndState, _example.IndRNNCell  # the cell the example shows

B, T, I, H = 4, 6, 3, 5


def by_hand(cell, x, keep, state=None):
    """The Keras loop written out: masked steps keep the state and output zero."""
    state = state or cell.initial_state(x.size(0), dtype=x.dtype)
    outs, last = [], torch.zeros(x.size(0), H, dtype=x.dtype)
    for t in range(x.size(1)):
        out, new = cell.step(cell.project_inputs(x[:, t]), state)
        k = keep[:, t, None]
        state = IndState(*(torch.where(k, n, o) for n, o in zip(new, state, strict=True)))
        last = torch.where(k, out, last)
        outs.append(torch.where(k, out, 0.0))
    return torch.stack(outs, 1), state, last


@pytest.fixture
def cell():
    torch.manual_seed(0)
    return IndRNNCell(I, H).double()


@pytest.mark.parametrize("how", ["full", "lengths", "mask"])
def test_custom_cell_outputs_state_and_last_output(cell, how):
    x = torch.randn(B, T, I, dtype=torch.float64)
    lengths = torch.tensor([6, 0, 2, 4])
    keep = {"full": torch.ones(B, T, dtype=torch.bool), "lengths": lengths_to_mask(lengths, T),
            "mask": torch.rand(B, T) < 0.5}[how]  # fmt: skip
    kwargs = {"full": {}, "lengths": {"lengths": lengths}, "mask": {"mask": keep}}[how]
    want_out, want_state, want_last = by_hand(cell, x, keep)
    seq = RNN(cell, return_sequences=True, return_state=True)
    out, state = seq(x, **kwargs)
    assert isinstance(state, IndState)
    torch.testing.assert_close(out, want_out)
    torch.testing.assert_close(state, want_state)
    last = RNN(cell)(x, **kwargs)  # the last OUTPUT (2h), not the state
    torch.testing.assert_close(last, want_last)
    assert not torch.allclose(last[keep.any(1)], want_state.h[keep.any(1)])


def test_custom_cell_initial_state_as_namedtuple_tuple_or_list(cell):
    x = torch.randn(B, T, I, dtype=torch.float64)
    s0 = IndState(torch.rand(B, H, dtype=torch.float64), torch.rand(B, H, dtype=torch.float64))
    layer = RNN(cell, return_sequences=True, return_state=True)
    want = by_hand(cell, x, torch.ones(B, T, dtype=torch.bool), s0)
    for given in (s0, tuple(s0), list(s0)):
        out, state = layer(x, initial_state=given)
        assert isinstance(state, IndState)
        torch.testing.assert_close(out, want[0])
    with pytest.raises(TypeError, match=r"`initial_state` must be a IndState of 2"):
        layer(x, initial_state=s0.h)
    with pytest.raises(ValueError, match=r"`initial_state\[1\]` tensors must have shape \(4, 5\)"):
        layer(x, initial_state=[s0.h, s0.h[:2]])


def test_builtin_lstm_takes_a_list_h_c():
    layer = LSTM(I, H, return_state=True)
    x = torch.randn(B, T, I)
    h0, c0 = torch.randn(B, H), torch.randn(B, H)
    out_list, s_list = layer(x, initial_state=[h0, c0])
    out_nt, _ = layer(x, initial_state=LSTMState(h0, c0))
    torch.testing.assert_close(out_list, out_nt)
    assert isinstance(s_list, LSTMState)


def test_custom_cell_stateful_chunks_equal_one_pass(cell):
    x = torch.randn(B, T, I, dtype=torch.float64)
    whole = RNN(cell, return_sequences=True)(x)
    chunked = RNN(cell, return_sequences=True, stateful=True)
    parts = torch.cat([chunked(x[:, :2]), chunked(x[:, 2:])], 1)
    torch.testing.assert_close(parts, whole)


@pytest.mark.parametrize("layout", ["prefix", "keras"])
def test_custom_cell_go_backwards(cell, layout):
    x = torch.randn(B, T, I, dtype=torch.float64)
    lengths = torch.tensor([6, 1, 3, 0])
    back = RNN(cell, return_sequences=True, go_backwards=True, go_backwards_layout=layout)
    fwd = RNN(cell, return_sequences=True)
    out = back(x, lengths)
    for b, n in enumerate(lengths.tolist()):
        alone = fwd(x[b : b + 1, :n].flip(1))[0] if n else torch.zeros(0, H)
        got = out[b, :n] if layout == "prefix" else out[b, T - n :]
        torch.testing.assert_close(got, alone.to(got))


def test_custom_cell_recurrent_dropout_and_gradients(cell):
    layer = RNN(cell, return_sequences=True, recurrent_dropout=0.5, seed=0)
    x = torch.randn(B, T, I, dtype=torch.float64, requires_grad=True)
    layer(x, mask=torch.rand(B, T) < 0.7).sum().backward()
    assert torch.isfinite(x.grad).all() and cell.u.grad is not None


class NoStep(nn.Module):
    input_size, hidden_size = I, H

    def initial_state(self, batch_size, *, device=None, dtype=None):
        return torch.zeros(batch_size, H)


def test_cell_missing_a_protocol_method_is_one_clear_error():
    with pytest.raises(TypeError, match=r"cell protocol.*NoStep has no project_inputs, step"):
        RNN(NoStep())
    with pytest.raises(ValueError, match="`dropout_per_gate=True` needs a cell with a `gates`"):
        RNN(IndRNNCell(I, H), dropout_per_gate=True)


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("zero_output", [True, False])
def test_custom_cell_matches_keras_rnn_of_the_same_cell(go_backwards, zero_output):
    keras = pytest.importorskip("keras")

    torch.manual_seed(1)
    cell = IndRNNCell(I, H)

    class KerasIndRNNCell(keras.layers.Layer):  # Keras's RNN over the same step function
        state_size, output_size = [H, H], H

        def call(self, inputs, states):
            out, new = cell.step(cell.project_inputs(inputs), IndState(*states))
            return out, list(new)

    flags = dict(return_sequences=True, return_state=True, go_backwards=go_backwards,
                 zero_output_for_mask=zero_output)  # fmt: skip
    ref = keras.layers.RNN(KerasIndRNNCell(), **flags)
    ours = RNN(cell, go_backwards_layout="keras", **flags)
    x = torch.randn(B, T, I)
    mask = torch.rand(B, T) < 0.6
    mask[0] = False
    want = [keras.ops.convert_to_numpy(t) for t in ref(x, mask=mask)]
    out, state = ours(x, mask=mask)
    torch.testing.assert_close(out.detach().numpy(), want[0], atol=1e-6, rtol=1e-6)
    for s, w in zip(state, want[1:], strict=True):
        torch.testing.assert_close(s.detach().numpy(), w, atol=1e-6, rtol=1e-6)
