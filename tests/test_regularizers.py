"""Keras-style regularizers: the penalty equals its formula, its gradient equals autograd's on
the formula and the analytic l1*sign(w) + 2*l2*w, Keras 3 gives the same values on the same
(transposed) weights, and max-norm caps row norms without touching rows already inside."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from rnnlab.layers import GRU, LSTM, Dense, Sequential, SimpleRNN
from rnnlab.layers.cells import GRUCell, LSTMCell, SimpleRNNCell
from rnnlab.layers.regularizers import (
    activity_penalty,
    apply_max_norm,
    grouped_parameters,
    weight_penalty,
)

I, H, K = 4, 6, 3
COEF = {"kernel_l1": 0.01, "kernel_l2": 0.02, "recurrent_l1": 0.03, "recurrent_l2": 0.04,
        "bias_l1": 0.05, "bias_l2": 0.06}  # fmt: skip


def _model(kind: str = "lstm", reset_after: bool = True) -> nn.Module:
    torch.manual_seed(0)
    rnn = {
        "rnn": lambda: SimpleRNN(I, H),
        "lstm": lambda: LSTM(I, H),
        "gru": lambda: GRU(I, H, reset_after=reset_after),
    }[kind]()
    model = Sequential(rnn, Dense(H, K))
    with torch.no_grad():  # non-zero biases so the bias terms are tested too
        for p in model.parameters():
            if p.dim() == 1:
                p.normal_()
    return model


def _by_hand(model: nn.Module, c: dict) -> torch.Tensor:
    cell, dense = model[0].cell, model[1]
    biases = [b for b in (cell.bias, getattr(cell, "bias_ih", None),
                          getattr(cell, "bias_hh", None)) if b is not None]  # fmt: skip
    kernels, recurrent = [cell.weight_ih, dense.weight], [cell.weight_hh]
    biases.append(dense.bias)
    total = torch.zeros(())
    for ws, role in ((kernels, "kernel"), (recurrent, "recurrent"), (biases, "bias")):
        for w in ws:
            total = total + c[f"{role}_l1"] * w.abs().sum() + c[f"{role}_l2"] * (w**2).sum()
    return total


@pytest.mark.parametrize("kind,reset_after", [("rnn", True), ("lstm", True), ("gru", True),
                                              ("gru", False)])  # fmt: skip
def test_weight_penalty_equals_formula_and_its_gradient(kind, reset_after):
    model = _model(kind, reset_after)
    ours = weight_penalty(model, **COEF)
    expected = _by_hand(model, COEF)
    torch.testing.assert_close(ours, expected, rtol=1e-6, atol=0)

    g_ours = torch.autograd.grad(ours, list(model.parameters()))
    g_formula = torch.autograd.grad(expected, list(model.parameters()))
    for a, b in zip(g_ours, g_formula, strict=True):
        torch.testing.assert_close(a, b)

    roles = {id(p): role for role, ps in grouped_parameters(model).items() for p in ps}
    for p, g in zip(model.parameters(), g_ours, strict=True):
        role = roles[id(p)]
        analytic = COEF[f"{role}_l1"] * torch.sign(p) + 2 * COEF[f"{role}_l2"] * p
        torch.testing.assert_close(g, analytic.detach())


def test_roles_cover_every_parameter_once_and_shared_ones_once():
    model = _model("gru", reset_after=True)
    groups = grouped_parameters(model)
    assert [len(groups[r]) for r in ("kernel", "recurrent", "bias")] == [2, 1, 3]
    assert sum(map(len, groups.values())) == len(list(model.parameters()))
    shared = Dense(3, 3)
    twice = nn.Sequential(shared, shared)
    torch.testing.assert_close(
        weight_penalty(twice, kernel_l2=1.0), (shared.weight**2).sum(), rtol=1e-6, atol=0
    )


def test_conv_and_torch_rnn_are_covered():
    conv, rnn = nn.Conv2d(2, 3, 3), nn.LSTM(I, H, num_layers=2)
    model = nn.ModuleList([conv, rnn])
    expected = conv.weight.abs().sum() + rnn.weight_ih_l0.abs().sum() + rnn.weight_ih_l1.abs().sum()
    torch.testing.assert_close(weight_penalty(model, kernel_l1=1.0), expected)
    rec = rnn.weight_hh_l0.square().sum() + rnn.weight_hh_l1.square().sum()
    torch.testing.assert_close(weight_penalty(model, recurrent_l2=1.0), rec)


def test_zero_coefficients_give_zero_on_the_model_device():
    out = weight_penalty(_model())
    assert out.shape == () and out.item() == 0.0 and out.dtype == torch.float32


@pytest.mark.parametrize("bad", [-1e-3, math.nan, math.inf])
def test_bad_coefficients_name_the_argument(bad):
    with pytest.raises(ValueError, match="`recurrent_l2` must be a finite number >= 0"):
        weight_penalty(_model(), recurrent_l2=bad)
    with pytest.raises(ValueError, match="`l1` must be a finite number >= 0"):
        activity_penalty(torch.ones(2, 3), l1=bad)
    with pytest.raises(ValueError, match="`max_norm` must be a finite number > 0"):
        apply_max_norm(_model(), bad)
    with pytest.raises(TypeError, match="`kernel_l1` must be a float, got str"):
        weight_penalty(_model(), kernel_l1="0.1")


def test_activity_penalty_divides_by_batch_size():
    a = torch.randn(5, 7, 3, requires_grad=True)
    ours = activity_penalty(a, l1=0.1, l2=0.2)
    expected = (0.1 * a.abs().sum() + 0.2 * (a**2).sum()) / 5
    torch.testing.assert_close(ours, expected)
    (g,) = torch.autograd.grad(ours, a)
    torch.testing.assert_close(g, (0.1 * torch.sign(a) + 0.4 * a).detach() / 5)
    b = torch.randn(5, 2)
    torch.testing.assert_close(
        activity_penalty((a, [b]), l2=1.0), ((a**2).sum() + (b**2).sum()) / 5
    )
    with pytest.raises(TypeError, match="`outputs` must be a tensor"):
        activity_penalty({"a": a}, l1=1.0)


def test_max_norm_caps_rows_and_leaves_inside_rows_unchanged():
    model = _model("lstm")
    cell = model[0].cell
    with torch.no_grad():
        cell.weight_ih[0] *= 100  # far outside
        cell.weight_hh[1] *= 100
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    m = 1.5
    apply_max_norm(model, m, which="kernel")
    for name, w in (("0.cell.weight_ih", cell.weight_ih), ("1.weight", model[1].weight)):
        norms_before = before[name].norm(dim=1)
        norms = w.detach().norm(dim=1)
        assert (norms <= m * (1 + 1e-6)).all()
        inside = norms_before <= m
        assert torch.equal(w.detach()[inside], before[name][inside])  # bit-for-bit
        outside = ~inside
        torch.testing.assert_close(norms[outside], torch.full_like(norms[outside], m))
        # direction kept
        cos = torch.nn.functional.cosine_similarity(w.detach()[outside], before[name][outside])
        torch.testing.assert_close(cos, torch.ones_like(cos))
    assert torch.equal(cell.weight_hh.detach(), before["0.cell.weight_hh"])  # not "kernel"
    assert torch.equal(cell.bias.detach(), before["0.cell.bias"])  # biases never
    apply_max_norm(model, m, which="recurrent")
    assert (cell.weight_hh.detach().norm(dim=1) <= m * (1 + 1e-6)).all()
    with pytest.raises(ValueError, match="`which` must be one of kernel, recurrent, all"):
        apply_max_norm(model, m, which="bias")


def test_max_norm_conv_uses_one_norm_per_output_channel():
    conv, deconv = nn.Conv2d(2, 4, 3), nn.ConvTranspose2d(2, 4, 3)
    with torch.no_grad():
        conv.weight.mul_(50)
        deconv.weight.mul_(50)
    apply_max_norm(nn.ModuleList([conv, deconv]), 0.5)
    assert torch.allclose(conv.weight.detach().flatten(1).norm(dim=1), torch.tensor(0.5))
    per_out = deconv.weight.detach().transpose(0, 1).flatten(1).norm(dim=1)
    assert torch.allclose(per_out, torch.tensor(0.5))


# --- Keras 3 parity -----------------------------------------------------------------------


def _keras():
    return pytest.importorskip("keras")


def _keras_layout(w: torch.Tensor) -> np.ndarray:
    w = w.detach().numpy()
    return w.T.copy() if w.ndim == 2 else w.copy()


@pytest.mark.parametrize("cell_cls", [SimpleRNNCell, LSTMCell, GRUCell])
def test_penalty_matches_keras_l1l2_on_transposed_weights(cell_cls):
    keras = _keras()
    torch.manual_seed(1)
    cell = cell_cls(I, H)
    with torch.no_grad():
        for p in cell.parameters():
            if p.dim() == 1:
                p.normal_()
    coef = {"kernel": (0.01, 0.02), "recurrent": (0.003, 0.5), "bias": (0.2, 0.0)}
    expected = 0.0
    for role, params in grouped_parameters(cell).items():
        reg = keras.regularizers.L1L2(l1=coef[role][0], l2=coef[role][1])
        for p in params:
            expected += float(reg(keras.ops.convert_to_tensor(_keras_layout(p))))
    ours = weight_penalty(
        cell, kernel_l1=0.01, kernel_l2=0.02, recurrent_l1=0.003, recurrent_l2=0.5, bias_l1=0.2
    )
    assert ours.item() == pytest.approx(expected, rel=1e-5)


def test_penalty_matches_a_keras_lstm_layers_regularization_losses():
    keras = _keras()
    model = _model("lstm")
    cell, dense = model[0].cell, model[1]
    reg = keras.regularizers.L1L2
    k_lstm = keras.layers.LSTM(
        H, kernel_regularizer=reg(0.01, 0.02), recurrent_regularizer=reg(0.03, 0.04),
        bias_regularizer=reg(0.05, 0.06),
    )  # fmt: skip
    k_dense = keras.layers.Dense(
        K, kernel_regularizer=reg(0.01, 0.02), bias_regularizer=reg(0.05, 0.06)
    )
    k_model = keras.Sequential([keras.Input((3, I)), k_lstm, k_dense])
    k_lstm.set_weights([_keras_layout(p) for p in (cell.weight_ih, cell.weight_hh, cell.bias)])
    k_dense.set_weights([_keras_layout(dense.weight), _keras_layout(dense.bias)])
    expected = sum(float(keras.ops.convert_to_numpy(loss)) for loss in k_model.losses)
    assert len(k_model.losses) == 5
    assert weight_penalty(model, **COEF).item() == pytest.approx(expected, rel=1e-5)


def test_activity_penalty_matches_keras_activity_regularization():
    keras = _keras()
    x = np.random.default_rng(0).normal(size=(4, 3, 5)).astype("float32")
    layer = keras.layers.ActivityRegularization(l1=0.01, l2=0.02)
    layer(x)
    (loss,) = layer.losses
    ours = activity_penalty(torch.from_numpy(x), l1=0.01, l2=0.02)
    assert ours.item() == pytest.approx(float(keras.ops.convert_to_numpy(loss)), rel=1e-6)


def test_max_norm_matches_keras_maxnorm_on_axis_0():
    keras = _keras()
    torch.manual_seed(2)
    lin = nn.Linear(5, 4)
    with torch.no_grad():
        lin.weight.mul_(torch.tensor([0.1, 3.0, 10.0, 0.5])[:, None])
    kernel = _keras_layout(lin.weight)  # (in, out): one column per output unit
    expected = keras.ops.convert_to_numpy(keras.constraints.MaxNorm(1.0, axis=0)(kernel))
    apply_max_norm(lin, 1.0)
    np.testing.assert_allclose(_keras_layout(lin.weight), expected, rtol=1e-6, atol=1e-7)
