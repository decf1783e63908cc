"""Pieces the hand-derived BPTT functions share: activations in place, their derivatives
written out from the activation's OUTPUT, and the input-side gradients.

An activation's derivative is computed from its output ``y``, so the forward pass keeps
only the activations (no pre-activations):

    tanh          1 - y^2
    sigmoid       y (1 - y)
    hard_sigmoid  1/6 where 0 < y < 1, else 0        (Keras 3: relu6(x + 3) / 6)
    softsign      (1 - |y|)^2                        (y = x / (1 + |x|))
    relu          1 where y > 0, else 0
    linear        1

At the kinks (hard_sigmoid at x = +-3, relu at 0) these are torch's own one-sided choices, so
the functions agree with autograd through the reference loop everywhere.
"""

from __future__ import annotations

import torch
from torch import Tensor

DERIVATIVES = ("tanh", "sigmoid", "hard_sigmoid", "softsign", "relu", "linear")


def act_(name: str, v: Tensor) -> Tensor:
    """Apply the activation ``name`` to ``v`` in place (``v`` may be a strided view)."""
    if name == "tanh":
        return v.tanh_()
    if name == "sigmoid":
        return v.sigmoid_()
    if name == "hard_sigmoid":  # the same operations, in the same order, as cells.hard_sigmoid
        return v.add_(3.0).clamp_(0.0, 6.0).div_(6.0)
    if name == "softsign":
        return v.div_(v.abs().add_(1.0))
    if name == "relu":
        return v.relu_()
    if name == "linear":
        return v
    raise ValueError(f"no hand-written derivative for activation {name!r}")


def act_into(name: str, v: Tensor, out: Tensor) -> Tensor:
    """``out = activation(v)`` without touching ``v``."""
    if name == "tanh":
        return torch.tanh(v, out=out)
    if name == "sigmoid":
        return torch.sigmoid(v, out=out)
    return act_(name, out.copy_(v))


def act_grad(name: str, y: Tensor) -> Tensor:
    """d activation / d x, written from the output ``y = activation(x)``; a new tensor."""
    if name == "tanh":
        return torch.addcmul(y.new_ones(()), y, y, value=-1.0)
    if name == "sigmoid":
        return torch.addcmul(y, y, y, value=-1.0)
    if name == "hard_sigmoid":
        return ((y > 0) & (y < 1)).to(y.dtype).div_(6.0)
    if name == "softsign":
        return (1.0 - y.abs()).square_()
    if name == "relu":
        return (y > 0).to(y.dtype)
    if name == "linear":
        return torch.ones_like(y)
    raise ValueError(f"no hand-written derivative for activation {name!r}")


def project(x_tm: Tensor, weight: Tensor, bias: Tensor | None, out: Tensor | None = None):
    """The input half of every step at once: (T, B, I) -> (T, B, G*H), one matmul (into
    ``out``, a contiguous (T, B, G*H) tensor, when given)."""
    T, B, _ = x_tm.shape
    flat = x_tm.reshape(T * B, -1)
    if out is None:
        out = x_tm.new_empty(T, B, weight.size(0))
    if bias is None:
        torch.mm(flat, weight.t(), out=out.view(T * B, -1))
    else:
        torch.addmm(bias, flat, weight.t(), out=out.view(T * B, -1))
    return out


def input_grads(ctx, d_pre: Tensor, x: Tensor, weight_ih: Tensor, bias_index: int):
    """Gradients of ``x`` (B, T, I), ``weight_ih`` and the input bias from the gradient of
    the projected inputs ``d_pre`` (T, B, G*H): one matmul over all B*T rows each.

    ``ctx.needs_input_grad`` is indexed with 0 for ``x``, 1 for ``weight_ih`` and
    ``bias_index`` for the bias.
    """
    T, B, GH = d_pre.shape
    flat = d_pre.view(T * B, GH)
    dx = dw = db = None
    if ctx.needs_input_grad[0]:
        dx = torch.mm(flat, weight_ih).view(T, B, -1).transpose(0, 1)
    if ctx.needs_input_grad[1]:
        dw = torch.mm(flat.t(), x.transpose(0, 1).reshape(T * B, -1))
    if ctx.needs_input_grad[bias_index]:
        db = flat.sum(0)
    return dx, dw, db


def time_major_grad(grad_out: Tensor | None, out_mask: Tensor | None) -> Tensor | None:
    """The outputs' gradient (B, T, H) as a (T, B, H) view, zeroed where outputs were."""
    if grad_out is None:
        return None
    g = grad_out.transpose(0, 1)
    return g if out_mask is None else g * out_mask


def write_outputs(hs: Tensor, out_mask: Tensor | None) -> Tensor:
    """Batch-first, contiguous outputs (B, T, H) from the states ``hs`` (T, B, H)."""
    T, B, H = hs.shape
    out = hs.new_empty(B, T, H)
    if out_mask is None:
        out.transpose(0, 1).copy_(hs)
    else:
        torch.mul(hs, out_mask, out=out.transpose(0, 1))
    return out
