"""The fast path: hand a standard cell to torch's fused recurrent kernels (cuDNN on GPU,
the native ATen kernel on CPU) with rnnlab's own parameters.

rnnlab keeps ONE bias vector (Keras, the chapter); torch's kernels add two. Passing our bias
as ``b_ih`` and zeros as ``b_hh`` gives the same pre-activations, so the same weights give
the same answers on both paths (the parity tests hold them together).

What runs here: SimpleRNN with tanh/relu, LSTM with tanh/sigmoid, GRU with
``reset_after=True`` and tanh/sigmoid, without recurrent dropout (input dropout is applied
to ``x`` beforehand: its one mask per sequence commutes with the kernel). Everything else
runs the explicit loop in :mod:`rnnlab.layers.recurrent`.
"""

from __future__ import annotations

import torch
from torch import _VF, Tensor
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .cells import GRUCell, LSTMCell, LSTMState, SimpleRNNCell


def fused_supported(cell) -> bool:
    """Whether torch's fused kernel computes exactly this cell's equations."""
    if type(cell) is SimpleRNNCell:
        return cell.activation in ("tanh", "relu")
    if type(cell) is LSTMCell:
        return cell.activation == "tanh" and cell.recurrent_activation == "sigmoid"
    if type(cell) is GRUCell:
        return (
            cell.reset_after
            and cell.activation == "tanh"
            and cell.recurrent_activation == "sigmoid"
        )
    return False


def state_output(state) -> Tensor:
    """The output of a built-in cell given its state: ``h`` (an LSTM's ``state.h``)."""
    return state.h if isinstance(state, LSTMState) else state


def _weights(cell) -> tuple[list[Tensor], bool]:
    if isinstance(cell, GRUCell):
        if cell.bias_ih is None:
            return [cell.weight_ih, cell.weight_hh], False
        return [cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh], True
    if cell.bias is None:
        return [cell.weight_ih, cell.weight_hh], False
    return [cell.weight_ih, cell.weight_hh, cell.bias, torch.zeros_like(cell.bias)], True


def fused_run(cell, x: Tensor, state, lengths: Tensor | None):
    """Run ``cell`` over ``x`` (B, T, I) with torch's fused kernel.

    ``state`` is the cell's state for batch B; returns ``(outputs (B, T, H), final_state,
    last_output (B, H))`` with TF1 ``dynamic_rnn`` semantics for ``lengths`` (each >= 1):
    zero outputs past each length and the state at the last valid step, whose ``h`` is the
    last output.

    The kernel's ``train`` flag only switches its (unused, zero) inter-layer dropout and
    whether cuDNN keeps the workspace that its backward needs. ``nn.LSTM`` passes
    ``self.training``, which is why its backward fails in eval mode ("cudnn RNN backward can
    only be called in training mode"); we pass "gradients are being recorded", so input
    gradients of an eval-mode model (adversarial attacks) work on cuDNN too.
    """
    train = torch.is_grad_enabled()
    weights, has_biases = _weights(cell)
    is_lstm = isinstance(cell, LSTMCell)
    hx = (state.h[None], state.c[None]) if is_lstm else state[None]  # (1, B, H)
    if isinstance(cell, LSTMCell):
        fn = _VF.lstm
    elif isinstance(cell, GRUCell):
        fn = _VF.gru
    else:
        fn = _VF.rnn_tanh if cell.activation == "tanh" else _VF.rnn_relu

    if lengths is None:
        out = fn(x, hx, weights, has_biases, 1, 0.0, train, False, True)
        outputs, h_n = out[0], out[1:]
    else:
        T = x.size(1)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        order, unorder = packed.sorted_indices, packed.unsorted_indices
        hx = tuple(h[:, order] for h in hx) if is_lstm else hx[:, order]
        out = fn(packed.data, packed.batch_sizes, hx, weights, has_biases, 1, 0.0, train, False)
        data, h_n = out[0], tuple(h[:, unorder] for h in out[1:])
        packed_out = type(packed)(data, packed.batch_sizes, order, unorder)
        outputs, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=T)
    if is_lstm:
        final = LSTMState(h_n[0][0], h_n[1][0])
        return outputs, final, final.h
    return outputs, h_n[0][0], h_n[0][0]
