"""Behaviour with no outside reference: padding, direction, statefulness, dropout masks,
gradcheck, and bad input."""

import pytest
import torch
from helpers import spy_step_masks

from rnnlab.layers import (
    GRU,
    LSTM,
    Bidirectional,
    GRUCell,
    LSTMCell,
    LSTMState,
    SimpleRNN,
    SimpleRNNCell,
    last_valid,
    stacked,
)

B, T, I, H = 3, 6, 4, 5
LAYERS = [
    (SimpleRNN, {}),
    (LSTM, {}),
    (GRU, {}),
    (GRU, {"reset_after": False}),
    (LSTM, {"activation": "softsign", "recurrent_activation": "hard_sigmoid"}),
]
IDS = ["rnn", "lstm", "gru", "gru_textbook", "lstm_softsign"]


def same_weights(layer, **flags):
    other = type(layer)(layer.input_size, layer.hidden_size, **flags, **layer._test_kwargs)
    other.load_state_dict(layer.state_dict())
    return other.double()


def make(cls, kwargs, **flags):
    layer = cls(I, H, **kwargs, **flags).double()
    layer._test_kwargs = kwargs
    return layer


@pytest.mark.parametrize("implementation", ["auto", "explicit"])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize(("cls", "kwargs"), LAYERS, ids=IDS)
def test_padded_equals_unpadded(cls, kwargs, go_backwards, implementation):
    flags = dict(return_sequences=True, return_state=True, go_backwards=go_backwards)
    layer = make(cls, kwargs, implementation=implementation, **flags)
    lengths = torch.tensor([6, 2, 4])
    x = torch.randn(B, T, I, dtype=torch.float64)
    x = x * (torch.arange(T)[None, :, None] < lengths[:, None, None])  # zero padding
    out, state = layer(x, lengths)
    for b, n in enumerate(lengths.tolist()):
        out_b, state_b = layer(x[b : b + 1, :n])
        torch.testing.assert_close(out[b, :n], out_b[0], atol=1e-12, rtol=0)
        assert (out[b, n:] == 0).all(), "outputs past a sequence's length must be zero"
        sb = state_b if isinstance(state_b, torch.Tensor) else state_b.h
        s = state if isinstance(state, torch.Tensor) else state.h
        torch.testing.assert_close(s[b], sb[0], atol=1e-12, rtol=0)
    # last output (return_sequences=False) is each sequence's last valid step; the layer
    # returns the final state's h, so this pins that the two agree on every path
    last = same_weights(layer, go_backwards=go_backwards, implementation=implementation)(x, lengths)
    s = state if isinstance(state, torch.Tensor) else state.h
    torch.testing.assert_close(last, s, atol=1e-12, rtol=0)
    torch.testing.assert_close(last, last_valid(out, lengths), atol=1e-12, rtol=0)


@pytest.mark.parametrize(("cls", "kwargs"), LAYERS, ids=IDS)
def test_bidirectional_padded_equals_unpadded(cls, kwargs):
    bi = Bidirectional(make(cls, kwargs, return_sequences=True)).double()
    lengths = torch.tensor([6, 1, 3])
    x = torch.randn(B, T, I, dtype=torch.float64)
    out = bi(x, lengths)
    assert out.shape == (B, T, 2 * H)
    for b, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(out[b, :n], bi(x[b : b + 1, :n])[0], atol=1e-12, rtol=0)


@pytest.mark.parametrize(("cls", "kwargs"), LAYERS, ids=IDS)
def test_go_backwards_equals_flipped_input(cls, kwargs):
    layer = make(cls, kwargs, return_sequences=True, go_backwards=True)
    forward = same_weights(layer, return_sequences=True)
    x = torch.randn(B, T, I, dtype=torch.float64)
    torch.testing.assert_close(layer(x), forward(x.flip(1)), atol=1e-12, rtol=0)


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
def test_bidirectional_merge_modes(merge_mode):
    bi = Bidirectional(LSTM(I, H, return_sequences=True), merge_mode=merge_mode)
    x = torch.randn(B, T, I)
    out = bi(x)
    f = bi.forward_layer(x)
    b = bi.backward_layer(x).flip(1)
    expected = {
        "concat": torch.cat([f, b], -1),
        "sum": f + b,
        "mul": f * b,
        "ave": (f + b) / 2,
        None: (f, b),
    }[merge_mode]
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize(("cls", "kwargs"), LAYERS, ids=IDS)
def test_stateful_chunks_equal_one_pass_and_reset(cls, kwargs):
    full = make(cls, kwargs, return_sequences=True)
    chunked = same_weights(full, return_sequences=True, stateful=True)
    x = torch.randn(B, T, I, dtype=torch.float64)
    whole = full(x)
    parts = torch.cat([chunked(x[:, :2]), chunked(x[:, 2:5]), chunked(x[:, 5:])], dim=1)
    torch.testing.assert_close(parts, whole, atol=1e-12, rtol=0)
    chunked.reset_state()
    torch.testing.assert_close(chunked(x[:, :2]), whole[:, :2], atol=1e-12, rtol=0)


def test_stateful_batch_size_change_is_rejected():
    layer = LSTM(I, H, stateful=True)
    layer(torch.randn(B, T, I))
    with pytest.raises(ValueError, match="Expected batch size: 3"):
        layer(torch.randn(B + 1, T, I))


def test_initial_state_is_used():
    layer = LSTM(I, H, return_state=True)
    x = torch.randn(B, T, I)
    h0 = LSTMState(torch.randn(B, H), torch.randn(B, H))
    out0, _ = layer(x)
    out1, _ = layer(x, initial_state=h0)
    assert not torch.allclose(out0, out1)
    # one step with the cell by hand from h0
    out_step, _ = layer(x[:, :1], initial_state=h0)
    ref, _ = layer.cell(x[:, 0], h0)
    torch.testing.assert_close(out_step, ref)


@pytest.mark.parametrize("cls", [SimpleRNN, LSTM, GRU])
def test_recurrent_dropout_mask_is_shared_across_steps_and_off_in_eval(cls):
    layer = cls(I, H, recurrent_dropout=0.5, return_sequences=True, implementation="reference")
    masks = spy_step_masks(layer)
    layer.train()
    layer(torch.randn(B, T, I))
    assert len(masks) == T and masks[0] is not None
    assert all(torch.equal(m, masks[0]) for m in masks), "one mask per sequence"
    assert set(masks[0].unique().tolist()) <= {0.0, 2.0}
    masks.clear()
    layer.eval()
    layer.implementation = "auto"
    assert layer.uses_fused_path(), "no recurrent dropout in eval: the fused kernel runs"
    layer.implementation = "reference"
    layer(torch.randn(B, T, I))
    assert len(masks) == T and all(m is None for m in masks)


def test_input_dropout_same_mask_for_every_step():
    layer = SimpleRNN(
        I,
        H,
        dropout=0.5,
        activation="linear",
        use_bias=False,
        return_sequences=True,
        implementation="explicit",
    )
    with torch.no_grad():
        layer.cell.weight_hh.zero_()
        layer.cell.weight_ih.copy_(torch.eye(H, I))
    x = torch.ones(1, T, I)
    out = layer(x)  # out[t] = masked x_t (identity kernel, no recurrence)
    assert torch.equal(out[0], out[0, :1].expand(T, -1)), "the input mask must not change in time"
    layer.eval()
    torch.testing.assert_close(layer(x)[0], torch.eye(H, I).sum(1).expand(T, -1))


@pytest.mark.parametrize(
    "cell",
    [
        SimpleRNNCell(3, 2),
        LSTMCell(3, 2),
        GRUCell(3, 2),
        GRUCell(3, 2, reset_after=False),
        LSTMCell(3, 2, activation="softsign", recurrent_activation="hard_sigmoid"),
    ],
)
def test_cells_pass_gradcheck(cell):
    cell = cell.double()
    x = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    state = cell.initial_state(2, dtype=torch.float64)
    state = (
        type(state)(*(torch.randn_like(s).requires_grad_(True) for s in state))
        if isinstance(state, tuple)
        else torch.randn_like(state).requires_grad_(True)
    )
    inputs = (x, *state) if isinstance(state, tuple) else (x, state)

    def f(x, *s):
        out, new = cell(x, type(state)(*s) if isinstance(state, tuple) else s[0])
        return (out, *new) if isinstance(new, tuple) else (out,)

    assert torch.autograd.gradcheck(f, inputs)


def test_keras_default_initialisers():
    cell = LSTMCell(7, 8)
    assert torch.equal(cell.bias[8:16], torch.ones(8)), "forget-gate bias 1"
    assert torch.equal(cell.bias[:8], torch.zeros(8))
    w = cell.weight_hh.detach()  # (4H, H) orthogonal: columns orthonormal
    torch.testing.assert_close(w.T @ w, torch.eye(8), atol=1e-5, rtol=0)
    limit = (6 / (7 + 32)) ** 0.5  # Glorot-uniform over the whole (I, 4H) kernel
    assert cell.weight_ih.abs().max() <= limit


def test_stacked_factory_shapes_and_dropout_only_in_training():
    model = stacked("lstm", I, H, 3, bidirectional=True, dropout=0.5, return_sequences=True)
    x = torch.randn(B, T, I)
    assert model(x).shape == (B, T, 2 * H)
    model.eval()
    torch.testing.assert_close(model(x), model(x))


# ---- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "err", "match"),
    [
        (lambda l: l(torch.randn(B, T, I + 1)), ValueError, r"input_size=4.*\(3, 6, 5\)"),
        (lambda l: l(torch.randn(B, I)), ValueError, r"\(batch, time, 4\)"),
        (lambda l: l(torch.randn(B, T, I), torch.tensor([-1, 1, 2])), ValueError, "lengths"),
        (lambda l: l(torch.randn(B, T, I), torch.tensor([7, 1, 2])), ValueError, r"\[0, 6\]"),
        (lambda l: l(torch.randn(B, T, I), torch.tensor([1, 2])), ValueError, r"\(3,\)"),
        (lambda l: l(torch.randn(B, T, I), torch.tensor([1.0, 2, 3])), TypeError, "integers"),
        (lambda l: l(torch.randn(B, T, I), None, torch.zeros(2, H)), TypeError, "LSTMState"),
    ],
)
def test_bad_input_names_the_argument(call, err, match):
    with pytest.raises(err, match=match):
        call(LSTM(I, H))


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: LSTM(I, H, activation="swish"), "`activation`.*'swish'"),
        (lambda: GRU(I, H, recurrent_activation="nope"), "`recurrent_activation`"),
        (lambda: Bidirectional(LSTM(I, H), merge_mode="max"), "`merge_mode`.*'max'"),
        (lambda: LSTM(0, H), "`input_size`.*0"),
        (lambda: LSTM(I, H, dropout=1.5), "`dropout`"),
        (lambda: LSTM(I, H, implementation="cudnn"), "`implementation`"),
        (lambda: GRU(I, H, reset_after=False, implementation="fused"), "fused"),
        (lambda: stacked("transformer", I, H, 2), "`kind`"),
    ],
)
def test_bad_construction_names_the_argument(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_stacked_with_bidirectional_top_reads_backward_half_at_step_zero():
    torch.manual_seed(0)
    model = stacked("gru", I, H, 2, bidirectional=True)  # top returns one vector per sequence
    lengths = torch.tensor([6, 3, 4])
    x = torch.randn(B, T, I)
    seq, _ = model.run(x, lengths)  # (B, T, 2H), input order
    out = model(x, lengths)
    torch.testing.assert_close(out[:, H:], seq[:, 0, H:])  # backward half: step 0
    torch.testing.assert_close(out[:, :H], seq[torch.arange(B), lengths - 1, :H])
    out.sum().backward()
    assert model.layers[-1].backward_layer.cell.weight_hh.grad.abs().sum() > 0


def test_torch_init_option_draws_every_parameter_uniformly():
    for cell in (LSTMCell(4, 16, init="torch"), GRUCell(4, 16, init="torch"),
                 SimpleRNNCell(4, 16, init="torch")):  # fmt: skip
        for p in cell.parameters():
            assert p.abs().max() <= 0.25 and p.abs().min() < 0.25 and p.std() > 0.05
    with pytest.raises(ValueError, match="`init`"):
        LSTM(I, H, init="he")


def test_stacked_dropout_between_layers_drops_and_rescales_what_the_next_layer_reads():
    torch.manual_seed(0)
    model = stacked("gru", I, H, 2, dropout=0.5, return_sequences=True)
    inner, top = model.layers
    seen = []
    call = top.call_batch_first
    top.call_batch_first = lambda x, *a, **k: seen.append(x) or call(x, *a, **k)
    x = torch.randn(64, T, I)
    model.train()
    model(x)
    below = inner(x)
    dropped = seen[-1]
    zero = dropped == 0
    assert abs(zero.float().mean().item() - 0.5) < 0.05
    torch.testing.assert_close(dropped[~zero], 2 * below[~zero])
    model.eval()
    model(x)
    torch.testing.assert_close(seen[-1], below)
