"""Pieces the hand-derived BPTT functions share: activations in place, and their
derivatives written out from the activation's OUTPUT.

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
import torch.nn.functional as F
from torch import Tensor

DERIVATIVES = ("tanh", "sigmoid", "hard_sigmoid", "softsign", "relu", "linear")


def act_(name: str, v: Tensor) -> Tensor:
    """Apply the activation ``name`` to ``v`` in place (``v`` may be a strided view)."""
    if name == "tanh":
        return v.tanh_()
    if name == "sigmoid":
        return v.sigmoid_()
    if name == "hard_sigmoid":  # torch's one kernel: relu6(x + 3) / 6, as cells.hard_sigmoid
        return F.hardsigmoid(v, inplace=True)
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
    if name == "softsign":
        return torch.div(v, torch.abs(v, out=out).add_(1.0), out=out)
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


def act_grad_into(name: str, y: Tensor, out: Tensor) -> Tensor:
    """``out = d activation / d x`` from the output ``y``: the values of :func:`act_grad`,
    written into ``out`` (the per-step form of the backward loops, no new (B, H) tensor),
    with float arithmetic only (comparisons into a float ``out`` run ~20x slower here)."""
    if name == "tanh":
        return torch.addcmul(y.new_ones(()), y, y, value=-1.0, out=out)
    if name == "sigmoid":
        return torch.addcmul(y, y, y, value=-1.0, out=out)
    if name == "hard_sigmoid":  # y (1 - y) > 0 exactly where 0 < y < 1 (y in [0, 1])
        return torch.addcmul(y, y, y, value=-1.0, out=out).sign_().div_(6.0)
    if name == "softsign":  # (|y| - 1)^2 = (1 - |y|)^2
        return torch.abs(y, out=out).sub_(1.0).square_()
    if name == "relu":  # y >= 0: sign(y) is 1 where y > 0, else 0
        return torch.sign(y, out=out)
    if name == "linear":
        return out.fill_(1.0)
    raise ValueError(f"no hand-written derivative for activation {name!r}")


def project(x: Tensor, w_ih: Tensor | None, width: int, out: Tensor | None = None) -> Tensor:
    """The gates' input half ``x_t W_ih^T`` for the time-major inputs ``x`` (T, B, K), one
    matmul over all T*B rows into a (T, B, width) buffer (new, or ``out``, contiguous) that
    the recurrence then overwrites in place with the gates. With ``w_ih`` None, ``x`` is
    already the projected input (the per-gate input-dropout path) and is copied."""
    T, B = x.shape[:2]
    if out is None:
        out = x.new_empty(T, B, width)
    if w_ih is None:
        return out.copy_(x)
    torch.mm(x.reshape(T * B, x.size(-1)), w_ih.t(), out=out.view(T * B, width))
    return out


def project_grads(needs, x: Tensor, w_ih: Tensor | None, dg: Tensor) -> tuple:
    """Gradients of ``(x, w_ih)`` from ``dg`` (T, B, G*H), the pre-activations' gradient, each
    one matmul over all T*B rows: ``dx = dG W_ih`` and ``dW_ih = dG^T X``, formed as
    ``(X^T dG)^T``, which MKL runs about twice as fast here. ``needs`` are the two
    ``needs_input_grad`` flags; with ``w_ih`` None ``dg`` is the gradient of ``x``."""
    if w_ih is None:
        return (dg if needs[0] else None), None
    flat = dg.view(-1, dg.size(-1))
    dx = torch.mm(flat, w_ih).view(*dg.shape[:2], w_ih.size(1)) if needs[0] else None
    x2 = x.reshape(flat.size(0), x.size(-1))
    dw = torch.mm(x2.t(), flat).t().contiguous() if needs[1] else None
    return dx, dw


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
