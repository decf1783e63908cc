"""The hand-derived BPTT of the explicit path (rnnlab.layers.bptt) against the readable
autograd loop (implementation="reference"): outputs, final states and every gradient, in
float64 to 1e-10 over random configurations; gradcheck; float32, bf16 autocast, eval mode;
double backward refused."""

import random

import pytest
import torch

from rnnlab.layers import GRU, LSTM, LSTMCell, LSTMState, SimpleRNN, select_state
from rnnlab.layers.bptt import bptt_run, bptt_supported

ACTS = ("tanh", "sigmoid", "hard_sigmoid", "softsign", "relu", "linear")
KINDS = ("rnn", "lstm", "gru", "gru_textbook")


def random_config(seed: int) -> dict:
    rng = random.Random(seed)
    kind = KINDS[seed % len(KINDS)]
    cfg = dict(
        kind=kind,
        B=rng.randint(1, 4),
        T=rng.randint(1, 7),
        I=rng.randint(1, 4),
        H=rng.randint(1, 5),
        act=rng.choice(ACTS) if rng.random() < 0.5 else "tanh",
        rec=rng.choice(ACTS) if rng.random() < 0.5 else "sigmoid",
        use_bias=rng.random() < 0.8,
        masking=rng.choice(["none", "lengths", "mask"]),  # lengths include 0; masks holes
        zero_output_for_mask=rng.random() < 0.5,
        go_backwards=rng.random() < 0.3,
        go_backwards_layout=rng.choice(["prefix", "keras"]),
        dropout=rng.choice([0.0, 0.0, 0.3]),
        recurrent_dropout=rng.choice([0.0, 0.4]),
        dropout_per_gate=rng.random() < 0.4,
        stateful=rng.random() < 0.25,
    )
    return cfg


def build(cfg: dict, implementation: str):
    kind = cfg["kind"]
    kwargs = dict(
        return_sequences=True,
        return_state=True,
        go_backwards=cfg["go_backwards"],
        go_backwards_layout=cfg.get("go_backwards_layout", "prefix"),
        dropout=cfg["dropout"],
        recurrent_dropout=cfg["recurrent_dropout"],
        dropout_per_gate=cfg.get("dropout_per_gate", False),
        zero_output_for_mask=cfg.get("zero_output_for_mask", True),
        stateful=cfg["stateful"],
        implementation=implementation,
        use_bias=cfg["use_bias"],
        activation=cfg["act"],
    )
    if kind == "rnn":
        layer = SimpleRNN(cfg["I"], cfg["H"], **kwargs)
    elif kind == "lstm":
        layer = LSTM(cfg["I"], cfg["H"], recurrent_activation=cfg["rec"], **kwargs)
    else:
        layer = GRU(
            cfg["I"], cfg["H"], recurrent_activation=cfg["rec"],
            reset_after=kind == "gru", **kwargs,
        )  # fmt: skip
    return layer.double()


def flat(state) -> list:
    return list(state) if isinstance(state, tuple) else [state]


def random_state(layer, B: int, dtype=torch.float64):
    H = layer.hidden_size
    parts = [torch.randn(B, H, dtype=dtype, requires_grad=True) for _ in range(2)]
    return LSTMState(*parts) if isinstance(layer.cell, LSTMCell) else parts[0]


def run_and_grad(layer, x, lengths, state, seed: int, weights, mask=None):
    """Outputs, final state, and the gradients of a random loss of both w.r.t. the input,
    the initial state and every parameter. ``seed`` fixes the dropout masks."""
    torch.manual_seed(seed)
    out, final = layer(x, lengths, initial_state=state, mask=mask)
    w_out, w_state = weights
    loss = (out * w_out).sum() + sum(
        (s * w).sum() for s, w in zip(flat(final), w_state[: len(flat(final))], strict=True)
    )
    inputs = [x, *(flat(state) if state is not None else []), *layer.parameters()]
    return [out, *flat(final)], torch.autograd.grad(loss, inputs)


@pytest.mark.parametrize("seed", range(64))
def test_explicit_equals_reference_loop_float64(seed):
    cfg = random_config(seed)
    ref, ours = build(cfg, "reference"), build(cfg, "explicit")
    assert bptt_supported(ours.cell) and ours._hand_derived()
    with torch.no_grad():  # away from the Keras init so that every gate and weight matters
        for p in ref.parameters():
            p.uniform_(-0.8, 0.8)
    ours.load_state_dict(ref.state_dict())
    B, T, H = cfg["B"], cfg["T"], cfg["H"]
    chunks = 2 if cfg["stateful"] else 1
    for chunk in range(chunks):  # stateful: the second chunk starts from the carried state
        x = torch.randn(B, T, cfg["I"], dtype=torch.float64, requires_grad=True)
        lengths = torch.randint(0, T + 1, (B,)) if cfg["masking"] == "lengths" else None
        mask = torch.rand(B, T) < 0.6 if cfg["masking"] == "mask" else None
        if mask is not None:
            mask[0] = False  # an empty row
        state = None if cfg["stateful"] else random_state(ref, B)
        n_state = len(flat(ref.cell.initial_state(B)))
        weights = (torch.randn(B, T, H, dtype=torch.float64),
                   [torch.randn(B, H, dtype=torch.float64) for _ in range(n_state)])  # fmt: skip
        vals_ref, grads_ref = run_and_grad(ref, x, lengths, state, seed + chunk, weights, mask)
        vals, grads = run_and_grad(ours, x, lengths, state, seed + chunk, weights, mask)
        # relu / linear recurrences can grow large: 1e-10 absolute or relative
        for a, b in zip([*vals, *grads], [*vals_ref, *grads_ref], strict=True):
            torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("steps", [1, 2, 3])
@pytest.mark.parametrize("seed", [1, 5, 9, 17, 21])  # LSTM configurations, T >= 4
def test_lstm_weight_gradients_in_chunks_of_steps(seed, steps, monkeypatch):
    """The LSTM backward takes dG in chunks of ``steps`` steps (a partial chunk where T is
    not a multiple): the same answers as the reference loop."""
    from rnnlab.layers import bptt_cells

    cfg = random_config(seed)
    assert cfg["kind"] == "lstm" and cfg["T"] > steps
    monkeypatch.setattr(bptt_cells, "CHUNK_ELEMENTS", steps * cfg["B"] * 4 * cfg["H"])
    test_explicit_equals_reference_loop_float64(seed)


def masked_reference(cell, x, state, mask, rec_mask, zero_output):
    """Keras's masked loop, written plainly: a masked step keeps the state; its output is
    zero or the previous output (zeros before the first valid step)."""
    xp = cell.project_inputs(x)
    outputs, prev = [], None
    for t in range(x.size(1)):
        out, new = cell.step(xp[:, t], state, rec_mask)
        keep = mask[:, t, None]
        state = select_state(keep, new, state)
        prev = torch.zeros_like(out) if prev is None else prev
        out = torch.where(keep, out, torch.zeros_like(out) if zero_output else prev)
        outputs.append(out)
        prev = out
    return torch.stack(outputs, 1), state


CELLS = {
    "rnn": lambda: SimpleRNN(3, 4).cell,
    "rnn_relu": lambda: SimpleRNN(3, 4, activation="relu").cell,
    "lstm": lambda: LSTM(3, 4).cell,
    "lstm_softsign": lambda: (
        LSTM(3, 4, activation="softsign", recurrent_activation="hard_sigmoid").cell
    ),  # fmt: skip
    "gru": lambda: GRU(3, 4).cell,
    "gru_textbook": lambda: GRU(3, 4, reset_after=False).cell,
}


@pytest.mark.parametrize("zero_output", [True, False])
@pytest.mark.parametrize("name", list(CELLS))
def test_any_mask_pattern_with_empty_rows_equals_the_masked_loop(name, zero_output):
    torch.manual_seed(0)
    cell = CELLS[name]().double()
    with torch.no_grad():
        for p in cell.parameters():
            p.uniform_(-0.8, 0.8)
    B, T = 5, 6
    mask = torch.rand(B, T) < 0.6
    mask[1] = False  # an empty row: zero outputs and the initial state
    mask[2, :3] = False  # leading masked steps: previous output is zero, not the state
    x = torch.randn(B, T, 3, dtype=torch.float64, requires_grad=True)
    h = torch.randn(B, 4, dtype=torch.float64, requires_grad=True)
    c = torch.randn(B, 4, dtype=torch.float64, requires_grad=True)
    state = LSTMState(h, c) if isinstance(cell, LSTMCell) else h
    rec_mask = (torch.rand(B, 4) < 0.7).double() / 0.7
    out_ref, final_ref = masked_reference(cell, x, state, mask, rec_mask, zero_output)
    out, final = bptt_run(cell, x, state, mask, rec_mask, zero_output=zero_output)
    torch.testing.assert_close(out, out_ref, atol=1e-12, rtol=0)
    for a, b in zip(flat(final), flat(final_ref), strict=True):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)
    torch.testing.assert_close(flat(final)[0][1], h[1], atol=0, rtol=0)
    assert (out[1] == 0).all()
    w = torch.randn_like(out)
    inputs = [x, h, c, *cell.parameters()]

    def grads(o, s):
        loss = (o * w).sum() + sum(v.square().sum() for v in flat(s))
        return torch.autograd.grad(loss, inputs, allow_unused=True)

    for a, b in zip(grads(out, final), grads(out_ref, final_ref), strict=True):
        if b is None:
            assert a is None or (a == 0).all()
        else:
            torch.testing.assert_close(a, b, atol=1e-10, rtol=0)


class _Run(torch.nn.Module):
    """``bptt_run`` as a module, so that ``functional_call`` can swap the cell's parameters."""

    def __init__(self, cell):
        super().__init__()
        self.cell = cell

    def forward(self, x, state, mask, rec_mask):
        return bptt_run(self.cell, x, state, mask, rec_mask)


@pytest.mark.parametrize("per_gate", [False, True])
@pytest.mark.parametrize("name", list(CELLS))
def test_gradcheck_on_tiny_shapes(name, per_gate):
    torch.manual_seed(1)
    run = _Run(CELLS[name]().double())
    is_lstm = isinstance(run.cell, LSTMCell)
    mask = torch.tensor([[True, True, False], [False, True, True]])
    lead = (run.cell.gates,) if per_gate else ()  # recurrent dropout shared or per gate
    rec_mask = (torch.rand(*lead, 2, 4) < 0.7).double() / 0.7
    x = torch.randn(2, 3, 3, dtype=torch.float64, requires_grad=True)
    h = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    c = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    names = [n for n, _ in run.named_parameters()]
    params = [p.detach().clone().requires_grad_(True) for p in run.parameters()]

    def f(x, h, c, *ps):
        state = LSTMState(h, c) if is_lstm else h + 0 * c
        out, final = torch.func.functional_call(
            run, dict(zip(names, ps, strict=True)), (x, state, mask, rec_mask)
        )
        return (out, *flat(final))

    assert torch.autograd.gradcheck(f, (x, h, c, *params))


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru", "gru_textbook"])
def test_float32_within_1e5_of_the_reference(kind):
    torch.manual_seed(2)
    cfg = dict(kind=kind, I=6, H=16, act="tanh", rec="sigmoid", use_bias=True,
               go_backwards=False, dropout=0.0, recurrent_dropout=0.2, stateful=False)  # fmt: skip
    ref, ours = build(cfg, "reference").float(), build(cfg, "explicit").float()
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(8, 20, 6, requires_grad=True)
    lengths = torch.randint(1, 21, (8,))
    w = (torch.randn(8, 20, 16), [torch.randn(8, 16), torch.randn(8, 16)])
    vals_ref, grads_ref = run_and_grad(ref, x, lengths, None, 0, w)
    vals, grads = run_and_grad(ours, x, lengths, None, 0, w)
    for a, b in zip([*vals, *grads], [*vals_ref, *grads_ref], strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cls", [SimpleRNN, LSTM, GRU])
def test_bf16_autocast_runs_forward_and_backward(cls):
    torch.manual_seed(3)
    layer = cls(4, 8, return_sequences=True, recurrent_dropout=0.2)  # auto -> explicit
    x = torch.randn(3, 5, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(x)
    assert out.dtype == torch.bfloat16
    assert "Function" in type(out.grad_fn).__name__ or out.grad_fn is not None
    out.float().sum().backward()
    grads = [p.grad for p in layer.parameters()]
    assert all(
        g is not None and g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads
    )
    torch.manual_seed(0)
    layer.eval()  # no dropout: compare with float32 loosely (bf16 keeps 8 mantissa bits)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = layer(x).float()
    layer.implementation = "explicit"
    torch.testing.assert_close(low, layer(x), atol=0.05, rtol=0.05)


@pytest.mark.parametrize("cls", [SimpleRNN, LSTM, GRU])
def test_eval_mode_input_gradients_match_the_reference(cls):
    ours = cls(4, 6, implementation="explicit", recurrent_dropout=0.3).double().eval()
    ref = cls(4, 6, implementation="reference", recurrent_dropout=0.3).double().eval()
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(3, 5, 4, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(ours(x).sum(), x)
    (g_ref,) = torch.autograd.grad(ref(x).sum(), x)
    torch.testing.assert_close(g, g_ref, atol=1e-12, rtol=0)


def test_double_backward_is_refused():
    layer = LSTM(3, 4, implementation="explicit").double()
    x = torch.randn(2, 5, 3, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(layer(x).square().sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable"):
        g.sum().backward()


def test_dispatch_explicit_auto_reference_and_custom_cells():
    x = torch.randn(2, 3, 4)
    assert type(LSTM(4, 5, implementation="explicit")(x).grad_fn).__name__.startswith("LSTM")
    rd = GRU(4, 5, reset_after=False)  # auto, not fusable: the hand-derived path
    assert type(rd(x).grad_fn).__name__.startswith("GRUFunction")
    ref = LSTM(4, 5, implementation="reference")
    assert "LSTMFunction" not in type(ref(x).grad_fn).__name__

    class Peephole(type(ref.cell)):  # a subclass may change step: it runs the loop
        pass

    assert not bptt_supported(Peephole(4, 5))
    spied = LSTM(4, 5).cell
    spied.step = lambda xp, state, mask=None: type(spied).step(spied, xp, state, mask)
    assert not bptt_supported(spied), "a step replaced on the instance must run"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dropout", ["none", "recurrent", "per_gate"])
def test_an_empty_batch_runs_forward_and_backward(kind, dropout):
    cfg = dict(kind=kind, I=3, H=4, act="tanh", rec="sigmoid", use_bias=True,
               go_backwards=False, dropout=0.3 if dropout == "per_gate" else 0.0,
               recurrent_dropout=0.0 if dropout == "none" else 0.3,
               dropout_per_gate=dropout == "per_gate", stateful=False)  # fmt: skip
    layer = build(cfg, "explicit")
    x = torch.randn(0, 5, 3, dtype=torch.float64, requires_grad=True)
    out, *_ = layer(x)
    assert out.shape == (0, 5, 4)
    out.sum().backward()
    assert x.grad.shape == x.shape
    assert all(p.grad is not None and (p.grad == 0).all() for p in layer.parameters())
