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
