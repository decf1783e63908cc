"""Inside an LSTM or GRU: record every gate at every step, and draw them as heatmaps.

- :func:`watch_steps`: a context manager under which a recurrent layer runs its explicit
  loop (``rnnlab.layers.recurrent``) and reports every call of its cell's ``step`` to a
  callback. The layer itself still owns lengths, ``go_backwards``, dropout masks, initial
  and carried state, so whatever is recorded is what the layer computes.
- :func:`record_gates` -> :class:`GateTrace`: per step the LSTM gates i, f, g, o, the cell
  state c and the output h (Hochreiter & Schmidhuber 1997; Gers et al. 2000), or the GRU
  gates r, z, n and h (Cho et al. 2014), each (B, T, H).
- :func:`plot_gates`: one heatmap per gate/state (time on x, unit on y) for one sequence,
  optionally beside the input image (a digit read row by row), as in Karpathy, Johnson &
  Fei-Fei (2015), "Visualizing and Understanding Recurrent Networks".

Time is the layer's processing order: with ``go_backwards`` step 0 reads each sequence's
last valid input, as the layer's own outputs do. Steps past a sequence's length are zero.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torch import Tensor

from rnnlab.layers.cells import GRUCell, LSTMCell, SimpleRNNCell
from rnnlab.layers.masking import check_lengths, lengths_to_mask
from rnnlab.layers.recurrent import RNN
from rnnlab.utils import save_figure

__all__ = ["GateTrace", "StepHook", "plot_gates", "record_gates", "watch_steps"]

# on_step(xp_t, state_before, recurrent_mask, output, new_state) after every cell step.
StepHook = Callable[[Tensor, object, "Tensor | None", Tensor, object], None]

GATE_NAMES = {
    LSTMCell: ("i", "f", "g", "o", "c", "h"),
    GRUCell: ("r", "z", "n", "h"),
    SimpleRNNCell: ("h",),
}
_LABELS = {
    "i": "input gate i",
    "f": "forget gate f",
    "g": "candidate g",
    "o": "output gate o",
    "c": "cell state c",
    "h": "output h",
    "r": "reset gate r",
    "z": "update gate z",
    "n": "candidate n",
}


def _check_layer(layer, argument: str = "layer") -> RNN:
    if not isinstance(layer, RNN):
        raise TypeError(
            f"`{argument}` must be an rnnlab recurrent layer (rnnlab.layers.RNN: SimpleRNN, "
            f"LSTM, GRU), got {type(layer).__name__}."
        )
    return layer


@contextmanager
def watch_steps(layer: RNN, on_step: StepHook) -> Iterator[list[int]]:
    """Within the block, ``layer`` runs its reference loop and calls ``on_step`` after each
    cell step with ``(xp_t, state_before, recurrent_mask, output, new_state)``.

    ``xp_t`` is the projected input ``W_ih x_t + b`` (B, G*H); ``output`` is the step's
    output before the layer masks padded steps. Yields a one-element list counting the
    steps. The layer's ``implementation`` and its cell are restored on exit.
    """
    _check_layer(layer)
    cell = layer.cell
    original = type(cell).step
    count = [0]

    def step(xp, state, recurrent_mask=None):
        out, new_state = original(cell, xp, state, recurrent_mask)
        count[0] += 1
        on_step(xp, state, recurrent_mask, out, new_state)
        return out, new_state

    implementation = layer.implementation
    layer.implementation = "reference"  # the loop that calls cell.step
    cell.step = step  # an instance attribute shadows the class's method
    try:
        yield count
    finally:
        del cell.step
        layer.implementation = implementation


@dataclass
class GateTrace:
    """Gates and states of one recurrent layer over one batch.

    Attributes:
        kind: ``"lstm"``, ``"gru"`` or ``"simple_rnn"``.
        values: name -> (B, T, H) tensor; LSTM ``i f g o c h``, GRU ``r z n h``.
        mask: (B, T) bool, True on each sequence's valid steps (processing order).
        outputs: the layer's outputs (B, T, H), as ``layer.run`` returns them.
        final_state: the layer's final state (``LSTMState(h, c)`` for an LSTM).
        go_backwards: whether time runs from each sequence's last valid input.
    """

    kind: str
    values: dict[str, Tensor]
    mask: Tensor
    outputs: Tensor
    final_state: object
    go_backwards: bool = False

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.values)

    @property
    def lengths(self) -> Tensor:
        return self.mask.sum(dim=1)

    def __getitem__(self, name: str) -> Tensor:
        if name not in self.values:
            raise KeyError(f"`name` must be one of {self.names}, got {name!r}.")
        return self.values[name]


def record_gates(
    layer: RNN, x: Tensor, lengths: Tensor | None = None, initial_state=None
) -> GateTrace:
    """Run ``layer`` over ``x`` (B, T, I) step by step, recording its gates and states.

    The layer runs its own loop (see :func:`watch_steps`), so lengths, ``go_backwards``,
    initial state and, in training mode, its dropout masks are the layer's. Call it in
    ``eval()`` mode to see the deterministic computation. No gradients are recorded, and a
    stateful layer's carried state is left as it was.
    """
    layer = _check_layer(layer)
    kind = next((k for k in GATE_NAMES if isinstance(layer.cell, k)), None)
    if kind is None:
        raise TypeError(
            "`layer` must wrap an LSTMCell, GRUCell or SimpleRNNCell, "
            f"got a {type(layer.cell).__name__}."
        )
    names = GATE_NAMES[kind]
    steps: list[tuple[Tensor, ...]] = []

    def on_step(xp, state, recurrent_mask, out, new_state):
        if kind is LSTMCell:
            steps.append((*layer.cell.gates_of(xp, state, recurrent_mask), new_state.c, out))
        elif kind is GRUCell:
            steps.append((*layer.cell.gates_of(xp, state, recurrent_mask), out))
        else:
            steps.append((out,))

    carried = layer._state if layer.stateful else None
    try:
        with torch.no_grad(), watch_steps(layer, on_step):
            outputs, final_state = layer.run(x, lengths, initial_state)
    finally:
        if layer.stateful:
            layer._state = carried
    B, T = outputs.shape[:2]
    checked = check_lengths(lengths, B, T, outputs.device)
    if checked is None:
        mask = torch.ones(B, T, dtype=torch.bool, device=outputs.device)
    else:
        mask = lengths_to_mask(checked, T)
    keep = mask[..., None].to(outputs.dtype)
    values = {
        name: torch.stack([s[k] for s in steps], dim=1) * keep for k, name in enumerate(names)
    }
    label = {LSTMCell: "lstm", GRUCell: "gru", SimpleRNNCell: "simple_rnn"}[kind]
    return GateTrace(label, values, mask, outputs, final_state, layer.go_backwards)


def _colour_scale(name: str, values: np.ndarray) -> tuple[str, float, float]:
    if name in ("i", "f", "o", "r", "z"):  # sigmoid-like gates: [0, 1]
        return "viridis", 0.0, 1.0
    bound = max(1.0, float(np.abs(values).max())) if name == "c" else 1.0
    return "RdBu_r", -bound, bound


def plot_gates(
    trace: GateTrace,
    index: int,
    path: str | os.PathLike,
    input_image: Tensor | np.ndarray | None = None,
    *,
    title: str | None = None,
) -> str:
    """Draw sequence ``index`` of ``trace``: one heatmap per gate/state, time on x and unit
    on y, and ``input_image`` (e.g. the 28x28 digit whose rows were the time steps) on the
    left. Writes a PNG atomically and returns its path.
    """
    if not isinstance(trace, GateTrace):
        raise TypeError(f"`trace` must be a GateTrace, got {type(trace).__name__}.")
    B = trace.mask.size(0)
    if not isinstance(index, int) or not -B <= index < B:
        raise IndexError(f"`index` must be an integer in [-{B}, {B}), got {index!r}.")
    image = None
    if input_image is not None:
        image = np.asarray(
            input_image.detach().cpu() if isinstance(input_image, Tensor) else input_image,
            dtype=np.float64,
        )
        if image.ndim != 2:
            raise ValueError(f"`input_image` must be 2-D (rows, cols), got shape {image.shape}.")
    length = int(trace.mask[index].sum())
    panels = [(name, trace.values[name][index].detach().cpu().double().numpy().T)
              for name in trace.names]  # fmt: skip
    n = len(panels) + (image is not None)
    fig = Figure(figsize=(2.6 * n, 3.2), constrained_layout=True)
    axes = fig.subplots(1, n, squeeze=False)[0]
    if image is not None:
        axes[0].imshow(image, cmap="gray_r", interpolation="nearest")
        axes[0].set_title("input (row t = step t)" if not trace.go_backwards else "input")
        axes[0].set_xticks([])
        axes[0].set_ylabel("row")
    for ax, (name, data) in zip(axes[n - len(panels) :], panels, strict=True):
        cmap, lo, hi = _colour_scale(name, data[:, :length])
        cmap = colormaps[cmap].with_extremes(bad="0.85")  # padded steps in light grey
        shown = np.ma.masked_array(
            data, mask=np.broadcast_to(np.arange(data.shape[1]) >= length, data.shape)
        )
        im = ax.imshow(shown, aspect="auto", cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        if length < data.shape[1]:
            ax.axvline(length - 0.5, color="k", linewidth=0.8, linestyle="--")
        ax.set_title(_LABELS[name])
        ax.set_xlabel("step t" + (" (reversed)" if trace.go_backwards else ""))
        ax.set_ylabel("unit")
        fig.colorbar(im, ax=ax, shrink=0.8)
    # left-aligned and bold, so it never reads as a continuation of the middle panel's title
    fig.suptitle(title or f"{trace.kind.upper()} gates, sequence {index} (length {length})",
                 x=0.01, ha="left", fontweight="bold")  # fmt: skip
    return str(save_figure(fig, path))
