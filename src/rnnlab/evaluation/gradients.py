"""Gradients through time: how much of the loss's gradient reaches each hidden state.

Backpropagation through time (Werbos 1990) sends ``dL/dh_t`` back through
``dh_{t+1}/dh_t = diag(act'(.)) W_hh``, one factor per step, so its norm shrinks or grows
geometrically with the distance to the loss: the vanishing and exploding gradients of
Hochreiter (1991) and Bengio, Simard & Frasconi (1994), measured as in Pascanu, Mikolov &
Bengio (2013), "On the difficulty of training recurrent neural networks". The LSTM's
additive cell state (with a forget-gate bias near 1, Jozefowicz et al. 2015) is the
chapter's remedy.

- :func:`gradient_norms_through_time`: ``||dL/dh_t||`` for every step t of one recurrent
  layer inside any model (SimpleRNN, LSTM, GRU; alone, in ``Sequential``, ``Stacked``,
  ``Bidirectional`` or a custom module).
- :func:`plot_gradient_norms`: the curves on a log scale (atomic PNG).
- :func:`format_gradient_table`: the same numbers as a text table.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping

import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

from rnnlab.layers.masking import check_lengths, lengths_to_mask
from rnnlab.layers.recurrent import RNN
from rnnlab.utils import save_figure

from .gates import watch_steps

__all__ = ["find_recurrent", "format_gradient_table", "gradient_norms_through_time"]
__all__ += ["plot_gradient_norms"]

REDUCTIONS = ("mean", "batch")


def find_recurrent(model: nn.Module, layer: int | RNN = 0) -> RNN:
    """The recurrent layer to watch: ``layer`` itself, or the ``layer``-th
    :class:`~rnnlab.layers.RNN` in ``model.modules()`` order (0: the first; a
    ``Bidirectional`` holds its forward layer, then its backward one)."""
    if isinstance(layer, RNN):
        if not any(m is layer for m in model.modules()):
            raise ValueError("`layer` must be a module of `model_or_layer`, got a foreign one.")
        return layer
    found = [m for m in model.modules() if isinstance(m, RNN)]
    if (
        isinstance(layer, bool)
        or not isinstance(layer, int)
        or not -len(found) <= layer < len(found)
    ):
        raise ValueError(
            f"`layer` must be an RNN module or an index into the {len(found)} recurrent "
            f"layers of `model_or_layer`, got {layer!r}."
        )
    return found[layer]


def _default_forward(model: nn.Module, x: Tensor, lengths: Tensor | None):
    return model(x) if lengths is None else model(x, lengths)


def gradient_norms_through_time(
    model_or_layer: nn.Module,
    x: Tensor,
    y: Tensor,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    lengths: Tensor | None = None,
    *,
    layer: int | RNN = 0,
    reduction: str = "mean",
    forward_fn: Callable[[nn.Module, Tensor, Tensor | None], Tensor] | None = None,
) -> Tensor:
    """``(T,)`` norms of ``dL/dh_t``, the loss's gradient at the hidden state of every step.

    ``h_t`` is the output of the chosen layer's cell at step ``t`` (``t`` in the layer's
    processing order: reversed with ``go_backwards``); its gradient collects every path
    from the loss, through later outputs and through ``h_{t+1}``. The model runs its own
    forward (``forward_fn(model, x, lengths)``, default ``model(x[, lengths])``; a tuple
    result's first element is the prediction) while the layer runs its explicit loop,
    then ``L = loss_fn(prediction, y)`` is differentiated with ``torch.autograd.grad``, so
    no parameter's ``.grad`` changes. Dropout applies as the model's mode says: call it in
    ``eval()`` mode for a deterministic curve. (A layer run twice in one forward gives
    the steps of both runs, one after the other.)

    ``reduction``:
      - ``"mean"`` (default): the L2 norm over units of each sequence's ``dL/dh_t``,
        averaged over the sequences still valid at step t (NaN where none is).
      - ``"batch"``: the L2 norm of the whole (B, H) gradient at step t (padded steps add 0).

    The scale of both depends on ``loss_fn``'s reduction (a batch-mean loss divides every
    per-sequence gradient by B); ratios between steps do not.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"`reduction` must be one of {REDUCTIONS}, got {reduction!r}.")
    if not isinstance(model_or_layer, nn.Module):
        raise TypeError(f"`model_or_layer` must be a torch.nn.Module, got {type(model_or_layer)}.")
    if not isinstance(x, Tensor) or x.dim() != 3:
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x)
        raise ValueError(f"`x` must be a (B, T, I) tensor, got {got}.")
    rnn = find_recurrent(model_or_layer, layer)
    hs: list[Tensor] = []

    def on_step(xp, state, recurrent_mask, out, new_state):
        hs.append(out)

    forward = forward_fn or _default_forward
    with torch.enable_grad(), watch_steps(rnn, on_step):
        prediction = forward(model_or_layer, x, lengths)
        if isinstance(prediction, (tuple, list)):
            prediction = prediction[0]
        loss = loss_fn(prediction, y)
    if not isinstance(loss, Tensor) or loss.numel() != 1:
        raise ValueError(f"`loss_fn` must return a scalar tensor, got {type(loss).__name__}.")
    if not hs:
        raise RuntimeError(
            "The watched recurrent layer did not run during `model_or_layer`'s forward: pick "
            "it with `layer=` or call it through `forward_fn`."
        )
    if not loss.requires_grad:
        raise RuntimeError("the loss does not depend on the hidden states (no graph).")
    grads = torch.autograd.grad(loss, hs, allow_unused=True)
    g = torch.stack(
        [torch.zeros_like(h) if d is None else d for h, d in zip(hs, grads, strict=True)], dim=1
    ).detach()  # (B, T_steps, H)
    B, steps = g.shape[:2]
    if reduction == "batch":
        return g.flatten(start_dim=2).transpose(0, 1).reshape(steps, -1).norm(dim=1)
    per_sequence = g.norm(dim=2)  # (B, T)
    valid = None
    if lengths is not None and steps == x.size(1):
        checked = check_lengths(lengths, B, steps, g.device)
        valid = None if checked is None else lengths_to_mask(checked, steps)
    if valid is None:
        return per_sequence.mean(dim=0)
    count_valid = valid.sum(dim=0)
    total = (per_sequence * valid).sum(dim=0)
    return torch.where(count_valid > 0, total / count_valid.clamp(min=1), math.nan)


def _curves(curves: Mapping[str, Tensor]) -> dict[str, list[float]]:
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError(f"`curves` must be a non-empty dict name -> (T,) tensor, got {curves!r}.")
    out = {}
    for name, c in curves.items():
        t = torch.as_tensor(c).detach().double().cpu()
        if t.dim() != 1 or t.numel() == 0:
            raise ValueError(f"`curves[{name!r}]` must be a non-empty 1-D tensor, got {t.shape}.")
        out[str(name)] = t.tolist()
    return out


def plot_gradient_norms(
    curves: Mapping[str, Tensor], path: str | os.PathLike, *, title: str | None = None
) -> str:
    """Draw each ``name -> (T,)`` curve of ``||dL/dh_t||`` against t on a log scale."""
    data = _curves(curves)
    fig = Figure(figsize=(6.4, 4.0), constrained_layout=True)
    ax = fig.subplots()
    for name, values in data.items():
        shown = [v if v > 0 else math.nan for v in values]  # log axis: zeros are gaps
        ax.plot(range(len(shown)), shown, marker=".", label=name)
    ax.set_yscale("log")
    ax.set_xlabel("step t (the loss is at the end)")
    ax.set_ylabel(r"$\|\partial L / \partial h_t\|$")
    ax.set_title(title or "Gradient norm through time")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return str(save_figure(fig, path))


def format_gradient_table(curves: Mapping[str, Tensor], *, every: int | None = None) -> str:
    """A text table: one row per step (every ``every``-th, default about 10 rows, always the
    first and last), one column per curve, then the ratio ``||dL/dh_0|| / ||dL/dh_{T-1}||``.
    """
    data = _curves(curves)
    T = max(len(v) for v in data.values())
    if every is None:
        every = max(1, math.ceil(T / 10))
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ValueError(f"`every` must be a positive integer, got {every!r}.")
    rows = sorted(set(range(0, T, every)) | {T - 1})
    width = max(12, *(len(n) + 2 for n in data))
    lines = [f"{'step':>6}" + "".join(f"{n:>{width}}" for n in data)]

    def cell(values: list[float], t: int) -> str:
        return f"{values[t]:>{width}.3e}" if t < len(values) else " " * (width - 1) + "-"

    lines += [f"{t:>6}" + "".join(cell(v, t) for v in data.values()) for t in rows]
    ratio = [v[0] / v[-1] if v[-1] else math.inf for v in data.values()]
    lines.append(f"{'0/last':>6}" + "".join(f"{r:>{width}.3e}" for r in ratio))
    return "\n".join(lines)
