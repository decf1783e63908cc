"""The Triton recurrent kernels against the explicit loop: outputs, final states and the
gradients of inputs, weights and initial states, fp32 within 1e-5.

Without CUDA the kernels run under the Triton interpreter (``TRITON_INTERPRET=1``, set here
before triton is imported, since ``triton.jit`` reads it when a kernel is defined) at tiny
sizes; the ``gpu`` tests repeat the parity at larger sizes on the device.
"""

import importlib
import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

pytest.importorskip("triton")

from triton.runtime.interpreter import InterpretedFunction  # noqa: E402

from rnnlab.layers import (  # noqa: E402
    GRU,
    LSTM,
    SimpleRNN,
    triton_kernels,  # noqa: E402
    triton_rnn,
    triton_tiled,
)
from rnnlab.layers import recurrent as recurrent_module  # noqa: E402
from rnnlab.layers.cells import LSTMState  # noqa: E402
from rnnlab.layers.triton_rnn import TritonLSTM, triton_run, triton_supported, triton_usable  # noqa: E402

if not torch.cuda.is_available() and not isinstance(
    triton_kernels.lstm_fwd_kernel, InterpretedFunction
):  # imported earlier without the interpreter: define the kernels again under it
    importlib.reload(triton_kernels)
    importlib.reload(triton_tiled)

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
TOL = {"atol": 1e-5, "rtol": 1e-5}


def _layer(cls, I, H, device=DEVICE, **kw):
    layer = cls(I, H, return_sequences=True, implementation="explicit", **kw).to(device)
    with torch.no_grad():  # away from the Keras init so every gate and weight matters
        for p in layer.parameters():
            p.uniform_(-0.8, 0.8)
    return layer


def _state(layer, B, device):
    H = layer.hidden_size
    if isinstance(layer, LSTM):
        return LSTMState(*(torch.randn(B, H, device=device).requires_grad_() for _ in range(2)))
    return torch.randn(B, H, device=device).requires_grad_()


def _flat(state):
    return list(state) if isinstance(state, tuple) else [state]


def _loss(out, state):
    """A random linear functional of every output, so each gradient path is exercised."""
    gen = torch.Generator().manual_seed(1)
    return sum(
        (t * torch.randn(t.shape, generator=gen).to(t.device)).sum() for t in [out, *_flat(state)]
    )


def _compare(layer, B, T, lengths=None, mask=None, monkeypatch=None, device=DEVICE):
    x = torch.randn(B, T, layer.input_size, device=device, requires_grad=True)
    s0 = _state(layer, B, device)
    leaves = [x, *layer.parameters(), *_flat(s0)]
    if lengths is not None:
        lengths = torch.tensor(lengths, device=device)

    if mask is None:
        layer.eval()
    else:  # the layer draws its own mask: hand it ours
        monkeypatch.setattr(recurrent_module, "_dropout_mask", lambda *a, **k: mask)
        layer.train()
    out_ref, s_ref = layer.run(x, lengths, s0)
    g_ref = torch.autograd.grad(_loss(out_ref, s_ref), leaves)

    out, s = triton_run(layer.cell, x, s0, lengths, mask)
    g = torch.autograd.grad(_loss(out, s), leaves)

    torch.testing.assert_close(out, out_ref, **TOL)
    for a, b in zip(_flat(s), _flat(s_ref), strict=True):
        torch.testing.assert_close(a, b, **TOL)
    names = ["x", *(n for n, _ in layer.named_parameters()), "h0", "c0"]
    for name, a, b in zip(names, g, g_ref, strict=False):
        torch.testing.assert_close(a, b, **TOL, msg=lambda m, name=name: f"grad {name}: {m}")


@pytest.mark.parametrize(
    "acts",
    [
        {},
        {"activation": "softsign", "recurrent_activation": "hard_sigmoid"},
        {"activation": "relu", "recurrent_activation": "sigmoid"},
    ],
)
def test_lstm_parity(acts):
    _compare(_layer(LSTM, 3, 5, **acts), B=2, T=4)


def test_lstm_parity_lengths():
    _compare(_layer(LSTM, 3, 5), B=2, T=4, lengths=[4, 2])


def test_lstm_parity_recurrent_dropout_and_lengths(monkeypatch):
    layer = _layer(
        LSTM, 4, 8, recurrent_dropout=0.5, activation="softsign",
        recurrent_activation="hard_sigmoid",
    )  # fmt: skip
    mask = (torch.rand(2, 8, device=DEVICE) > 0.5).float() * 2.0
    _compare(layer, B=2, T=4, lengths=[1, 3], mask=mask, monkeypatch=monkeypatch)


@pytest.mark.parametrize("activation", ["tanh", "relu", "linear"])
def test_simple_rnn_parity(activation):
    _compare(_layer(SimpleRNN, 3, 5, activation=activation), B=2, T=4)


def test_simple_rnn_parity_recurrent_dropout_and_lengths(monkeypatch):
    layer = _layer(SimpleRNN, 4, 8, recurrent_dropout=0.5, activation="sigmoid")
    mask = (torch.rand(2, 8, device=DEVICE) > 0.5).float() * 2.0
    _compare(layer, B=2, T=4, lengths=[2, 4], mask=mask, monkeypatch=monkeypatch)


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_parity(reset_after):
    _compare(_layer(GRU, 3, 5, reset_after=reset_after), B=2, T=4)


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_parity_recurrent_dropout_and_lengths(reset_after, monkeypatch):
    layer = _layer(
        GRU, 4, 8, reset_after=reset_after, recurrent_dropout=0.5, activation="softsign",
        recurrent_activation="hard_sigmoid",
    )  # fmt: skip
    mask = (torch.rand(2, 8, device=DEVICE) > 0.5).float() * 2.0
    _compare(layer, B=2, T=4, lengths=[3, 1], mask=mask, monkeypatch=monkeypatch)


def test_gru_without_bias():
    _compare(_layer(GRU, 3, 5, use_bias=False), B=2, T=3, lengths=[3, 2])


def test_batch_tiles():
    """B = 17 > BLOCK_B = 16: two programs, the second mostly padding."""
    _compare(_layer(LSTM, 2, 3), B=17, T=2, lengths=[1, 2] * 8 + [1])


def test_lstm_tiled_over_units(monkeypatch):
    """The unit-tiled kernels (triton_tiled, used above MAX_HIDDEN): H = 20 is two unit
    tiles, B = 17 two batch tiles; one launch per step here, the persistent single launch
    with its grid barrier only on a GPU."""
    calls = []
    fwd = triton_tiled.lstm_fwd_tiled

    def spy(*args, **kwargs):
        calls.append(args[-1])  # persistent?
        return fwd(*args, **kwargs)

    monkeypatch.setattr(triton_rnn, "MAX_HIDDEN", 16)
    monkeypatch.setattr(triton_tiled, "lstm_fwd_tiled", spy)
    layer = _layer(
        LSTM, 2, 20, recurrent_dropout=0.5, activation="softsign",
        recurrent_activation="hard_sigmoid",
    )  # fmt: skip
    mask = (torch.rand(17, 20, device=DEVICE) > 0.5).float() * 2.0
    lengths = [3, 1, 2] * 5 + [2, 3]
    _compare(layer, B=17, T=3, lengths=lengths, mask=mask, monkeypatch=monkeypatch)
    assert calls == [DEVICE == "cuda"]


def test_forward_without_grad_and_partial_grads():
    layer = _layer(LSTM, 3, 5)
    x = torch.randn(2, 4, 3, device=DEVICE)
    s0 = layer.cell.initial_state(2, device=DEVICE)
    with torch.no_grad():
        out, s = triton_run(layer.cell, x, s0, None, None)
        out_ref, s_ref = layer.eval().run(x, None, s0)
    torch.testing.assert_close(out, out_ref, **TOL)
    torch.testing.assert_close(s.c, s_ref.c, **TOL)
    # only the last output feeds the loss: the other output gradients arrive as zeros
    xp = layer.cell.project_inputs(x).detach().requires_grad_()
    out, hT, cT = TritonLSTM.apply(
        xp, layer.cell.weight_hh, s0.h, s0.c, None, None, "tanh", "sigmoid"
    )
    (gx,) = torch.autograd.grad(cT.sum(), xp)
    assert gx.shape == xp.shape and torch.isfinite(gx).all()


def test_supported_and_errors():
    assert triton_supported(LSTM(3, 5).cell)
    assert triton_supported(SimpleRNN(3, 5, activation="softsign").cell)
    assert triton_supported(GRU(3, 5, reset_after=False).cell)
    assert triton_supported(LSTM(3, 256).cell)  # tiled over units
    assert not triton_supported(LSTM(3, 512).cell)
    assert not triton_supported(GRU(3, 128).cell)
    with pytest.raises(ValueError, match="do not cover"):
        triton_run(GRU(3, 128).cell, torch.randn(1, 2, 3), torch.zeros(1, 128), None, None)
    assert triton_usable(torch.zeros(1, device=DEVICE))
    assert not triton_usable(torch.zeros(1, dtype=torch.float64))
    cell = LSTM(3, 5).cell
    with pytest.raises(ValueError, match="float32"):
        triton_run(cell, torch.randn(2, 2, 3).double(), cell.double().initial_state(2), None, None)
    cell = LSTM(3, 5).cell
    with pytest.raises(ValueError, match="recurrent_mask"):
        triton_run(cell, torch.randn(2, 2, 3), cell.initial_state(2), None, torch.ones(2, 4))


@pytest.mark.gpu
@pytest.mark.parametrize(
    "cls, kw, H",
    [
        (LSTM, {}, 64),
        (LSTM, {}, 128),  # tiled over units, one persistent launch with a grid barrier
        (LSTM, {}, 256),  # MAX_HIDDEN_TILED
        (SimpleRNN, {}, 64),
        (GRU, {"reset_after": True}, 64),
        (GRU, {"reset_after": False}, 64),
    ],
)
def test_gpu_parity_larger(cls, kw, H, monkeypatch):
    layer = _layer(cls, 16, H, device="cuda", recurrent_dropout=0.3, **kw)
    mask = (torch.rand(32, H, device="cuda") > 0.3).float() / 0.7
    lengths = torch.randint(1, 33, (32,)).tolist()
    _compare(layer, 32, 32, lengths=lengths, mask=mask, monkeypatch=monkeypatch, device="cuda")


@pytest.mark.gpu
def test_gpu_tiled_persistent_matches_stepwise():
    """The grid barrier: one persistent launch gives what one launch per step gives."""
    torch.manual_seed(0)
    B, T, H = 16, 16, 256
    xp = torch.randn(B, T, 4 * H, device="cuda")
    w = torch.randn(4 * H, H, device="cuda") / H**0.5
    h0, c0 = torch.randn(B, H, device="cuda"), torch.randn(B, H, device="cuda")
    lengths = torch.randint(1, T + 1, (B,), device="cuda")
    assert triton_tiled.persistent_possible(B, H, xp.device)
    codes = (0, 1)
    runs = [
        triton_tiled.lstm_fwd_tiled(xp, w, h0, c0, None, lengths, codes, True, p)
        for p in (True, False)
    ]
    for a, b in zip(*runs, strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    _, _, _, gates, cs = runs[0]
    dout = torch.randn(B, T, H, device="cuda")
    grads = [
        triton_tiled.lstm_bwd_tiled(w, gates, cs, c0, None, lengths, dout, h0, c0, codes, p)
        for p in (True, False)
    ]
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


@pytest.mark.parametrize("cls", [LSTM, GRU, SimpleRNN])
def test_layer_implementation_triton_matches_explicit(cls):
    """The layer's own `implementation="triton"` path (lengths, recurrent dropout mask)."""
    torch.manual_seed(0)
    explicit = cls(3, 8, return_sequences=True, return_state=True, implementation="explicit")
    fused = cls(3, 8, return_sequences=True, return_state=True, implementation="triton")
    fused.load_state_dict(explicit.state_dict())
    x = torch.randn(2, 4, 3)
    lengths = torch.tensor([4, 2])
    out_e, state_e = explicit(x, lengths)
    out_t, state_t = fused(x, lengths)
    torch.testing.assert_close(out_t, out_e, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(state_t, state_e, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="triton"):
        cls(3, 300, implementation="triton")


def test_config_reaches_the_triton_kernels():
    """`--model.implementation=triton` is accepted by the config and builds layers that run
    the Triton path, with the explicit loop's outputs on the same weights."""
    from rnnlab.training.config import apply_overrides, load_preset
    from rnnlab.training.experiment import build_model

    def model(impl):
        cfg = apply_overrides(
            load_preset("digits-lstm"), [f"model.implementation={impl}", "model.hidden_size=8"]
        )
        torch.manual_seed(0)
        return build_model(cfg, torch.zeros(8, 8), 10).to(DEVICE).eval()

    triton_model, explicit = model("triton"), model("explicit")
    layers = [m for m in triton_model.modules() if isinstance(m, LSTM)]
    assert layers and all(m.implementation == "triton" for m in layers)
    explicit.load_state_dict(triton_model.state_dict())
    x = torch.rand(3, 8, 8, device=DEVICE)
    with torch.no_grad():
        torch.testing.assert_close(triton_model(x), explicit(x), **TOL)
