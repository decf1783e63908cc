"""Keras-style regularizers and the max-norm constraint, for any rnnlab model.

Keras attaches ``kernel_regularizer``, ``recurrent_regularizer``, ``bias_regularizer`` and
``activity_regularizer`` to each layer and ``kernel_constraint`` / ``recurrent_constraint``
(e.g. ``MaxNorm``) to its weights. rnnlab keeps the layers plain and applies the same terms to
a whole model from the training step instead (the ``train.kernel_l1`` ... ``train.max_norm``
config keys call these functions):

* :func:`weight_penalty` -- ``keras.regularizers.L1L2`` on every weight of one role::

      R(W) = l1 * sum_ij |W_ij| + l2 * sum_ij W_ij^2

  Note: Keras's L2 has NO factor 1/2 (``L2(l2)(w) = l2 * sum(w**2)``), so its gradient is
  ``dR/dW = l1 * sign(W) + 2 * l2 * W``. An ``l2`` here is therefore half of torch's SGD
  ``weight_decay`` for the same pull (``weight_decay = 2 * l2``). ``sign(0) = 0``, the
  subgradient autograd takes for ``|w|`` at 0.

  Roles: in a recurrent cell (:class:`~rnnlab.layers.cells.SimpleRNNCell`,
  :class:`~rnnlab.layers.cells.LSTMCell`, :class:`~rnnlab.layers.cells.GRUCell`) the
  *kernel* is ``weight_ih`` (Keras ``kernel``), the *recurrent kernel* is ``weight_hh``
  (Keras ``recurrent_kernel``) and the *bias* is ``bias`` or ``bias_ih`` + ``bias_hh``
  (Keras's ``reset_after`` GRU keeps both rows of its ``(2, 3H)`` bias). ``torch.nn`` RNNs
  (``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_*``) are read the same way. In ``Dense`` /
  ``nn.Linear`` and the convolutions, ``weight`` is the kernel and ``bias`` the bias. The
  layout does not matter for these sums: rnnlab's ``(G*H, I)`` is Keras's ``(I, G*H)``
  transposed, with the same gate blocks, so both give the same numbers.

* :func:`activity_penalty` -- ``keras.layers.ActivityRegularization`` (or any layer's
  ``activity_regularizer=L1L2(l1, l2)``) on a layer's outputs ``a`` of batch size ``B``::

      R(a) = (l1 * sum |a| + l2 * sum a^2) / B

  Checked against the installed Keras 3.15 (``KERAS_BACKEND=torch``): ``Layer.__call__``
  computes the regularizer on each output tensor and divides it by ``shape[0]`` ("normalize
  by batch size", ``ops.divide_no_nan``; Keras 2 did not divide). A 0-d output is not divided.
  :func:`activity_penalty` accepts a tensor or a sequence of tensors (Keras flattens a layer's
  outputs and adds one term per tensor) and does the same.

* :func:`apply_max_norm` -- ``keras.constraints.MaxNorm(max_value)``: after each optimizer
  step, every unit's *incoming* weight vector ``w`` is rescaled to
  ``w * min(1, max_value / ||w||_2)``. Keras stores kernels as ``(in, out)`` and normalises
  over ``axis=0``, one norm per output unit (per column). torch stores ``(out, in)``, so the
  same vectors are the ROWS: the norm runs over every dimension but the first (``dim=1`` of a
  Linear / cell weight, ``dims 1..`` of a conv weight ``(out, in, k...)``, which is Keras's
  ``axis=[0, 1, 2]`` for ``(kh, kw, in, out)``; ``dims 0, 2..`` of a transposed conv's
  ``(in, out, k...)``). A recurrent kernel ``(G*H, H)`` gets one norm per gate unit, as
  Keras's ``recurrent_constraint`` on its ``(H, G*H)`` matrix does. One difference on
  purpose: Keras multiplies every column by ``clip(n, 0, m) / (n + 1e-7)``, which also
  shrinks columns already inside the ball by a factor ``1 - 1e-7/n`` on every call; here
  such rows are left bit-for-bit unchanged.

Biases are never constrained (Keras's ``bias_constraint`` is separate and rarely used).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor, nn

from ..utils import check_nonnegative
from .cells import GRUCell, LSTMCell, SimpleRNNCell

__all__ = ["activity_penalty", "apply_max_norm", "grouped_parameters", "weight_penalty"]

_CELLS = (SimpleRNNCell, LSTMCell, GRUCell)
_ROLES = ("kernel", "recurrent", "bias")
_WHICH = ("kernel", "recurrent", "all")


def _roles(module: nn.Module) -> Iterator[tuple[str, nn.Parameter, int]]:
    """``(role, parameter, unit_dim)`` for ``module``'s own parameters (not its children's).

    ``unit_dim`` is the dimension that indexes output units (for max-norm): 0 for torch's
    ``(out, in, ...)`` weights, 1 for a transposed convolution's ``(in, out, ...)``.
    """
    own = dict(module.named_parameters(recurse=False))
    if isinstance(module, _CELLS):
        yield "kernel", own["weight_ih"], 0
        yield "recurrent", own["weight_hh"], 0
        for name in ("bias", "bias_ih", "bias_hh"):
            if own.get(name) is not None:
                yield "bias", own[name], 0
    elif isinstance(module, nn.RNNBase):  # torch.nn.RNN / LSTM / GRU (weight_ih_l0, ...)
        for name, p in own.items():
            if name.startswith("weight_ih"):
                yield "kernel", p, 0
            elif name.startswith("weight_hh"):
                yield "recurrent", p, 0
            elif name.startswith("bias"):
                yield "bias", p, 0
    elif isinstance(module, (nn.Linear, nn.modules.conv._ConvNd)):
        transposed = getattr(module, "transposed", False)
        yield "kernel", own["weight"], 1 if transposed else 0
        if own.get("bias") is not None:
            yield "bias", own["bias"], 0


def grouped_parameters(model: nn.Module) -> dict[str, list[nn.Parameter]]:
    """``{"kernel": [...], "recurrent": [...], "bias": [...]}``: the parameters that
    :func:`weight_penalty` regularizes, each once (shared parameters are not counted twice).
    Parameters of other modules (embeddings, normalisation layers, ...) are in no group."""
    groups: dict[str, list[nn.Parameter]] = {role: [] for role in _ROLES}
    seen: set[int] = set()
    for module in model.modules():
        for role, p, _ in _roles(module):
            if id(p) not in seen:
                seen.add(id(p))
                groups[role].append(p)
    return groups


def _l1l2(params: list[nn.Parameter], l1: float, l2: float) -> Tensor | None:
    total = None
    for p in params:
        term = None
        if l1:
            term = l1 * p.abs().sum()
        if l2:
            sq = l2 * p.square().sum()
            term = sq if term is None else term + sq
        if term is not None:
            total = term if total is None else total + term
    return total


def weight_penalty(
    model: nn.Module,
    *,
    kernel_l1: float = 0.0,
    kernel_l2: float = 0.0,
    recurrent_l1: float = 0.0,
    recurrent_l2: float = 0.0,
    bias_l1: float = 0.0,
    bias_l2: float = 0.0,
) -> Tensor:
    """Keras's ``L1L2`` penalties of ``model``, to add to the loss::

        kernel_l1 * sum|W_ih| + kernel_l2 * sum W_ih^2
        + recurrent_l1 * sum|W_hh| + recurrent_l2 * sum W_hh^2
        + bias_l1 * sum|b| + bias_l2 * sum b^2

    summed over every recurrent cell and every Dense / Linear / convolution in ``model``
    (see the module docstring for the roles). No factor 1/2 on the L2 term (Keras's
    convention). Returns a 0-d tensor (zero, on the model's device, when every coefficient is
    0 or nothing matches); its gradient is ``l1 * sign(w) + 2 * l2 * w`` per weight.
    """
    coefficients = {
        "kernel": (kernel_l1, kernel_l2),
        "recurrent": (recurrent_l1, recurrent_l2),
        "bias": (bias_l1, bias_l2),
    }
    checked = {
        role: (check_nonnegative(f"{role}_l1", l1), check_nonnegative(f"{role}_l2", l2))
        for role, (l1, l2) in coefficients.items()
    }
    total = None
    if any(l1 or l2 for l1, l2 in checked.values()):
        for role, params in grouped_parameters(model).items():
            term = _l1l2(params, *checked[role])
            if term is not None:
                total = term if total is None else total + term
    if total is None:
        first = next(model.parameters(), None)
        device = first.device if first is not None else None
        dtype = first.dtype if first is not None and first.is_floating_point() else None
        return torch.zeros((), device=device, dtype=dtype)
    return total


def activity_penalty(
    outputs: Tensor | Sequence[Tensor], *, l1: float = 0.0, l2: float = 0.0
) -> Tensor:
    """Keras 3's activity regularisation of a layer's ``outputs`` (batch first)::

        (l1 * sum|a| + l2 * sum a^2) / B,   B = a.shape[0]

    one such term per tensor when ``outputs`` is a sequence of tensors (e.g. a recurrent
    layer's ``(outputs, state)``, flattened), as Keras adds one loss per output tensor.
    A 0-d tensor is not divided.
    """
    l1, l2 = check_nonnegative("l1", l1), check_nonnegative("l2", l2)
    tensors = _flatten(outputs)
    if not tensors:
        raise ValueError("`outputs` must be a tensor or a non-empty sequence of tensors, got none.")
    total = None
    for a in tensors:
        term = torch.zeros((), device=a.device, dtype=a.dtype)
        if l1:
            term = term + l1 * a.abs().sum()
        if l2:
            term = term + l2 * a.square().sum()
        if a.ndim > 0 and a.shape[0] > 0:
            term = term / a.shape[0]
        total = term if total is None else total + term
    return total


def _flatten(outputs) -> list[Tensor]:
    if isinstance(outputs, Tensor):
        return [outputs]
    if isinstance(outputs, (list, tuple)):
        return [t for item in outputs for t in _flatten(item)]
    if outputs is None:
        return []
    raise TypeError(
        "`outputs` must be a tensor or a (nested) sequence of tensors, "
        f"got {type(outputs).__name__}."
    )


@torch.no_grad()
def _max_norm_(weight: Tensor, max_norm: float, unit_dim: int) -> None:
    dims = [d for d in range(weight.ndim) if d != unit_dim]
    if not dims:  # a 1-d weight has no incoming vectors
        return
    norms = torch.linalg.vector_norm(weight, dim=dims, keepdim=True)
    scale = torch.where(norms > max_norm, max_norm / norms, torch.ones_like(norms))
    weight.mul_(scale)


def apply_max_norm(model: nn.Module, max_norm: float, *, which: str = "kernel") -> None:
    """Keras's ``MaxNorm(max_norm)`` constraint, in place: every output unit's incoming weight
    vector ``w`` (a row of a torch ``(out, in)`` weight) becomes ``w * min(1, max_norm/||w||)``.

    ``which``: ``"kernel"`` (input kernels ``weight_ih`` and Dense/conv weights, Keras's
    ``kernel_constraint``), ``"recurrent"`` (``weight_hh``, Keras's
    ``recurrent_constraint``) or ``"all"`` (both). Call it after each ``optimizer.step()``,
    as Keras applies constraints after each update. Rows already within the ball are not
    touched.
    """
    if isinstance(max_norm, bool) or not isinstance(max_norm, (int, float)):
        raise TypeError(f"`max_norm` must be a float, got {type(max_norm).__name__} {max_norm!r}.")
    if not math.isfinite(max_norm) or max_norm <= 0:
        raise ValueError(f"`max_norm` must be a finite number > 0, got {max_norm!r}.")
    if which not in _WHICH:
        raise ValueError(f"`which` must be one of {', '.join(_WHICH)}; got {which!r}.")
    roles = ("kernel", "recurrent") if which == "all" else (which,)
    seen: set[int] = set()
    for module in model.modules():
        for role, p, unit_dim in _roles(module):
            if role in roles and id(p) not in seen:
                seen.add(id(p))
                _max_norm_(p, float(max_norm), unit_dim)
