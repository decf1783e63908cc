"""The explicit path: rnnlab's built-in cells run by hand-derived backpropagation through time.

:func:`bptt_run` is what ``implementation="explicit"`` (and ``"auto"`` where torch's fused
kernel cannot compute the configuration: recurrent dropout, the textbook GRU, softsign /
hard_sigmoid / relu / linear activations) runs for :class:`SimpleRNNCell`,
:class:`LSTMCell` and :class:`GRUCell`. It computes exactly what the readable autograd loop
in :mod:`rnnlab.layers.recurrent` computes (``implementation="reference"``, the loop every
other cell runs); the tests hold the two together to 1e-10 in float64. Instead of recording
a dozen small autograd nodes per step, each cell is ONE ``torch.autograd.Function``
(:mod:`rnnlab.layers.bptt_cells`) whose backward is written out: one recurrent matmul per
step and the weight gradients as large matmuls over many B*T rows.

The input half ``W_ih x + b`` of all steps is one matmul inside each Function, the bias as a
column of ``W_ih`` against a column of ones (its backward: one matmul over all B*T rows for
each of ``dX`` and ``[dW_ih | db]``); with one input-dropout mask per gate it is projected
here, under autograd, and handed over instead.

Masks: a (B, T) bool ``step_mask`` (``lengths`` become one) holds the state on False steps;
outputs there are zero (``zero_output=True``, TF1/Keras default) or the previous output
(zeros before a sequence's first valid step, as Keras starts from a zero output). Dropout: the
recurrent mask ``rec_mask`` (B, H), or one per gate (G, B, H), multiplies the state entering
the recurrent matmul (``in_mask`` likewise, shared or per gate, the inputs).

Not supported: double backward (a second derivative through these functions raises
``RuntimeError``, from ``once_differentiable``); use ``implementation="reference"`` for
Hessian-vector products. Under autocast the whole recurrence runs in the autocast dtype
(as the reference loop's matmuls would).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .bptt_cells import GRUFunction, LSTMFunction, SimpleRNNFunction
from .bptt_ops import DERIVATIVES
from .cells import GRUCell, LSTMCell, LSTMState, activations_within

__all__ = ["bptt_run", "bptt_supported"]


def bptt_supported(cell) -> bool:
    """Whether :func:`bptt_run` computes exactly this cell (the built-in classes themselves,
    not subclasses, which may change ``step``, nor a cell whose ``step`` was replaced on the
    instance; activations with a written-out derivative)."""
    if "step" in vars(cell) or "gates_of" in vars(cell):
        return False
    return activations_within(cell, DERIVATIVES)


def _out_mask(step_mask: Tensor | None, zero_output: bool) -> Tensor | None:
    """(T, B, 1) multiplier of the states giving the outputs."""
    if step_mask is None:
        return None
    if zero_output:
        return step_mask
    # previous output on a held step: the (held) state, once a valid step has been seen
    return step_mask.cummax(0).values


def bptt_run(
    cell,
    x: Tensor,
    state,
    step_mask: Tensor | None = None,
    rec_mask: Tensor | None = None,
    *,
    in_mask: Tensor | None = None,
    zero_output: bool = True,
):
    """Run ``cell`` over ``x`` (B, T, I) from ``state``; returns ``(outputs (B, T, H),
    final_state)``.

    Args:
        step_mask: (B, T) bool, False where the step is skipped (state held), or None.
        rec_mask: recurrent-dropout mask on the state entering the recurrent matmul, (B, H)
            shared by the gates or (G, B, H) one per gate.
        in_mask: input-dropout mask, (B, I) shared or (G, B, I) one per gate (the cell's
            ``project_inputs(x, mask)`` applies it); None when ``x`` is already masked.
        zero_output: outputs of skipped steps are zero (True) or the previous output.
    """
    dtype = x.dtype
    if torch.is_autocast_enabled(x.device.type):
        dtype = torch.get_autocast_dtype(x.device.type)
    with torch.autocast(x.device.type, enabled=False):
        return _run(cell, x.to(dtype), state, step_mask, rec_mask, in_mask, zero_output, dtype)


def _inputs(cell, x: Tensor, in_mask: Tensor | None, dtype) -> tuple:
    """What the Function projects: ``(X (T, B, I+1), [W_ih | b] (G*H, I+1))``, the
    time-major inputs (input dropout shared by the gates applied) with a column of ones
    against the bias (``(X, W_ih)`` without a bias); or, with one input mask per gate,
    ``(xp (T, B, G*H), None)``, the input half projected here (gate g reads m_g ⊙ x).

    The input-side bias: LSTM and SimpleRNN ``bias``, the textbook GRU ``bias``, the GRU
    ``reset_after`` ``bias_ih`` plus ``bias_hh``'s r and z parts (its n part stays inside
    ``r ⊙ (W_hn h + b_hn)``). All under autograd, so their gradients flow back."""
    w = cell.weight_ih.to(dtype)
    b = cell.bias_ih if isinstance(cell, GRUCell) and cell.reset_after else cell.bias
    if isinstance(cell, GRUCell) and cell.reset_after and cell.bias_hh is not None:
        H = cell.hidden_size
        rz = torch.cat([cell.bias_hh[: 2 * H], cell.bias_hh.new_zeros(H)])
        b = rz if b is None else b + rz
    b = None if b is None else b.to(dtype)
    if in_mask is not None and in_mask.dim() == 2:
        x, in_mask = x * in_mask[:, None].to(dtype), None
    if in_mask is None:
        x = x.transpose(0, 1)
        if b is None:
            return x.contiguous(), w
        ones = x.new_ones(*x.shape[:2], 1)
        return torch.cat([x, ones], 2), torch.cat([w, b[:, None]], 1)
    G = in_mask.size(0)
    xg = x.unsqueeze(0) * in_mask[:, :, None].to(dtype)  # (G, B, T, I)
    xp = torch.einsum("gbti,ghi->tbgh", xg, w.view(G, -1, w.size(1))).flatten(-2)
    return (xp if b is None else xp + b), None


def _run(cell, x, state, step_mask, rec_mask, in_mask, zero_output, dtype):
    def cast(t: Tensor | None) -> Tensor | None:
        return None if t is None else t.to(dtype)

    mask = None
    if step_mask is not None:
        mask = step_mask.t()[..., None].contiguous()  # (T, B, 1)
    out_mask = cast(_out_mask(mask, zero_output))
    rec_mask = cast(rec_mask)
    if rec_mask is not None and rec_mask.dim() == 3 and rec_mask.size(0) == 1:
        rec_mask = rec_mask[0]  # one gate: per gate is shared
    xin, w_ih = _inputs(cell, x, in_mask, dtype)
    w_hh = cast(cell.weight_hh)
    if isinstance(cell, LSTMCell):
        h0, c0 = cast(state.h), cast(state.c)
        out, h, c = LSTMFunction.apply(
            xin, w_ih, w_hh, None, h0, c0, mask, out_mask, rec_mask,
            cell.activation, cell.recurrent_activation,
        )  # fmt: skip
        return out, LSTMState(h, c)
    h0 = cast(state)
    if isinstance(cell, GRUCell):
        b_hn = None
        if cell.reset_after and cell.bias_hh is not None:
            b_hn = cast(cell.bias_hh[cell.hidden_size * 2 :])
        out, h = GRUFunction.apply(
            xin, w_ih, w_hh, b_hn, h0, None, mask, out_mask, rec_mask,
            cell.activation, cell.recurrent_activation, cell.reset_after,
        )  # fmt: skip
        return out, h
    out, h = SimpleRNNFunction.apply(
        xin, w_ih, w_hh, None, h0, None, mask, out_mask, rec_mask, cell.activation, None
    )
    return out, h
