"""torch.nn interop: from_torch / to_torch round trips, PackedSequence and time-major input,
and torch.compile / torch.jit.trace / torch.export against eager (outputs and gradients)."""

import warnings

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnlab.layers import GRU, LSTM, Bidirectional, SimpleRNN, Stacked, from_torch, to_torch

B, T, I, H = 4, 6, 3, 5
TORCH = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def _h(state, kind):
    """torch's (h_n[, c_n]) from rnnlab states: a layer, a Bidirectional pair or a list."""
    flat = []
    for s in state if isinstance(state, list) else [state]:
        flat += list(s) if isinstance(s, tuple) and not hasattr(s, "_fields") else [s]
    if kind == "lstm":
        return torch.stack([s.h for s in flat]), torch.stack([s.c for s in flat])
    return torch.stack(flat)


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_from_torch_matches_and_round_trips_exactly(kind, num_layers, bidirectional, batch_first):
    torch.manual_seed(0)
    ref = TORCH[kind](I, H, num_layers=num_layers, bidirectional=bidirectional,
                      batch_first=batch_first).double()  # fmt: skip
    ours = from_torch(ref)
    kinds = (
        (Stacked,)
        if num_layers > 1
        else (Bidirectional,)
        if bidirectional
        else (LSTM, GRU, SimpleRNN)
    )
    assert isinstance(ours, kinds)
    x = torch.randn(B, T, I, dtype=torch.float64)
    x = x if batch_first else x.transpose(0, 1)
    out_ref, state_ref = ref(x)
    out, state = ours(x)
    torch.testing.assert_close(out, out_ref, atol=1e-12, rtol=0)
    torch.testing.assert_close(_h(state, kind), state_ref, atol=1e-12, rtol=0)
    back = to_torch(ours)
    assert type(back) is type(ref) and back.batch_first == batch_first
    again = from_torch(back)
    for (n1, p1), (n2, p2) in zip(ours.named_parameters(), again.named_parameters(), strict=True):
        assert n1 == n2 and torch.equal(p1, p2), n1  # rnnlab -> torch -> rnnlab is exact
    torch.testing.assert_close(back(x)[0], out_ref, atol=1e-12, rtol=0)


def test_to_torch_method_and_relu_and_no_bias():
    layer = SimpleRNN(I, H, activation="relu", use_bias=False, return_sequences=True)
    ref = layer.to_torch()
    assert ref.nonlinearity == "relu" and not ref.bias
    x = torch.randn(B, T, I)
    torch.testing.assert_close(layer(x), ref(x)[0])
    torch.testing.assert_close(from_torch(ref)(x)[0], layer(x))


def test_from_torch_lstm_bias_is_the_sum_of_torch_biases():
    ref = nn.LSTM(I, H)
    ours = from_torch(ref)
    torch.testing.assert_close(ours.cell.bias, ref.bias_ih_l0 + ref.bias_hh_l0)


@pytest.mark.parametrize(
    ("make", "err", "match"),
    [
        (lambda: from_torch(nn.Linear(2, 3)), TypeError, "nn.RNN, nn.LSTM or nn.GRU"),
        (lambda: from_torch(nn.LSTM(I, H, proj_size=2)), ValueError, "proj_size"),
        (lambda: to_torch(GRU(I, H, reset_after=False)), ValueError, "reset_after=True"),
        (lambda: to_torch(LSTM(I, H, recurrent_dropout=0.2)), ValueError, "dropout"),
        (lambda: to_torch(LSTM(I, H, go_backwards=True)), ValueError, "go_backwards"),
        (lambda: to_torch(nn.Linear(2, 3)), TypeError, "SimpleRNN, LSTM or GRU"),
    ],
)
def test_interop_bad_input(make, err, match):
    with pytest.raises(err, match=match):
        make()


@pytest.mark.parametrize("kind", [SimpleRNN, LSTM, GRU])
def test_packed_sequence_equals_padded_with_lengths(kind):
    layer = kind(I, H, return_sequences=True, return_state=True)
    x = torch.randn(B, T, I)
    lengths = torch.tensor([3, 6, 1, 4])
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out_p, state_p = layer(packed)
    assert isinstance(out_p, nn.utils.rnn.PackedSequence)
    out, state = layer(x, lengths)
    padded, got_lengths = pad_packed_sequence(out_p, batch_first=True, total_length=T)
    torch.testing.assert_close(padded, out)
    assert torch.equal(got_lengths, lengths)
    torch.testing.assert_close(state_p, state)
    last = kind(I, H)
    last.load_state_dict(layer.state_dict())
    torch.testing.assert_close(last(packed), last(x, lengths))
    with pytest.raises(ValueError, match="PackedSequence carries its lengths"):
        layer(packed, lengths)


def test_time_major_input():
    layer = GRU(I, H, return_sequences=True, batch_first=False)
    first = GRU(I, H, return_sequences=True)
    first.load_state_dict(layer.state_dict())
    x = torch.randn(T, B, I)
    torch.testing.assert_close(layer(x), first(x.transpose(0, 1)).transpose(0, 1))


# ---- compile / trace / export ---------------------------------------------------------------


def _eager_and_grads(layer, x, lengths=None, **kw):
    x = x.clone().requires_grad_(True)
    out = layer(x, **kw) if lengths is None else layer(x, lengths, **kw)
    grads = torch.autograd.grad(out.square().sum(), [x, *layer.parameters()])
    return out.detach(), grads


def _check(fn, layer, x, lengths=None, **kw):
    want, want_g = _eager_and_grads(layer, x, lengths, **kw)
    got, got_g = _eager_and_grads(fn, x, lengths, **kw)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-6)
    for a, b in zip(got_g, want_g, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)


def test_compile_runs_the_explicit_loop_and_matches_eager():
    torch.manual_seed(0)
    layer = LSTM(I, H, return_sequences=True)  # "auto": fused in eager, explicit compiled
    assert layer.uses_fused_path()
    _check(torch.compile(layer, backend="aot_eager"), layer, torch.randn(B, T, I))
    path = torch.compile(lambda: torch.tensor(layer.uses_fused_path()), backend="eager")
    assert not path(), "compiled calls are routed to the explicit loop"


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore")  # torch-internal deprecation and dynamo warnings
@pytest.mark.parametrize("implementation", ["auto", "explicit"])
@pytest.mark.parametrize("kind", [LSTM, GRU])
def test_inductor_compile_matches_eager(kind, implementation):
    torch.manual_seed(0)
    layer = kind(I, H, return_sequences=True, implementation=implementation)
    _check(torch.compile(layer), layer, torch.randn(B, T, I), torch.tensor([6, 2, 4, 1]))


@pytest.mark.parametrize("kind", [LSTM, GRU, SimpleRNN])
def test_jit_trace_and_export_match_eager(kind):
    torch.manual_seed(0)
    layer = kind(I, H, return_sequences=True)
    x = torch.randn(B, T, I)
    with warnings.catch_warnings():  # deprecation; the shape checks become constants
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(layer, (x,))
    _check(traced, layer, x)
    exported = torch.export.export(layer, (x,)).module()
    _check(exported, layer, x)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_export_with_lengths_or_a_mask_holds_for_other_values(bidirectional):
    torch.manual_seed(0)
    layer = LSTM(I, H, return_sequences=True)
    layer = Bidirectional(layer) if bidirectional else layer
    x = torch.randn(B, T, I)
    lengths = torch.tensor([6, 2, 4, 0])
    exported = torch.export.export(layer, (x, lengths)).module()
    for n in (lengths, torch.tensor([1, 6, 0, 3])):  # new values, same graph
        _check(exported, layer, x, n)
    mask = torch.rand(B, T) < 0.6
    exported = torch.export.export(layer, (x,), kwargs={"mask": mask}).module()
    _check(exported, layer, x, mask=torch.rand(B, T) < 0.5)


def test_from_torch_stack_on_packed_input_equals_torch():
    torch.manual_seed(0)
    ref = nn.GRU(I, H, num_layers=2, bidirectional=True, batch_first=True).double()
    ours = from_torch(ref)
    x = torch.randn(B, T, I, dtype=torch.float64)
    packed = pack_padded_sequence(x, torch.tensor([3, 6, 1, 4]), batch_first=True,
                                  enforce_sorted=False)  # fmt: skip
    out_ref, h_ref = ref(packed)
    out, states = ours(packed)
    torch.testing.assert_close(out.data, out_ref.data, atol=1e-12, rtol=0)
    torch.testing.assert_close(_h(states, "gru"), h_ref, atol=1e-12, rtol=0)
