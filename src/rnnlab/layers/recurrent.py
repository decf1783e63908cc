"""The one time loop, and the SimpleRNN / LSTM / GRU layers built on it.

Shapes: B batch, T time, I input features, H hidden units, G gates. Layers are batch-first
(``x`` is (B, T, I)) unless ``batch_first=False`` ((T, B, I), as torch's default);
``lengths`` (B,) and ``mask`` (B, T) are batch-major either way.

:class:`RNN` owns everything that is about time rather than about one step (Keras's
``RNN(cell)``, Haiku's ``dynamic_unroll``)::

    state = initial_state or carried state (stateful) or cell.initial_state(B)
    keep  = step mask (B, T): lengths_to_mask(lengths) or the given mask
    x, keep = reversed in time (go_backwards; see "go_backwards layouts")
    xp = cell.project_inputs(x ⊙ input-dropout mask)      # one matmul for all T steps
    last = 0
    for t in range(T):
        output, new_state = cell.step(xp[:, t], state, recurrent-dropout mask)
        state  = where(keep[:, t], new_state, state)      # a masked step keeps the state
        last   = where(keep[:, t], output, last)          # the last unmasked output
        output = where(keep[:, t], output, 0)  if zero_output_for_mask  else  last

**Masks.** ``lengths`` (right padding) is TF1's ``dynamic_rnn(sequence_length=...)`` of the
chapter's Listings 5.3/5.4: outputs past a sequence's length are zero and the final state is
the state at its last valid step; it runs torch's fused kernel. ``mask=`` (B, T) bool takes
any pattern with Keras's semantics: a masked step keeps the state, and its output is zero
(``zero_output_for_mask=True``, the default, TF1's padding) or the previous output
(``False``, Keras's ``RNN`` default). A right-padded ``mask`` runs as ``lengths`` (fused
path); a mask with holes runs the explicit loop. A row with nothing valid (length 0) gives
zero outputs and returns the initial state. Without ``return_sequences`` the layer returns
the output at each row's last unmasked step (zeros for an empty row): the last *output*,
which for a custom cell need not be any part of its state. (Keras returns the same, except
that with ``zero_output_for_mask=True`` it zeroes a row's last output when the row's final
step is masked.)

**go_backwards layouts.** ``go_backwards_layout="prefix"`` (default) reverses each
sequence's span (its first ``lengths[b]`` steps; for a mask, up to its last True step) and
returns outputs in that processing order with the padding still at the end: a padded row
comes out as ``[h(x[n-1]) ... h(x[0]), 0 ... 0]``, exactly what the row alone gives, which is
what TF1's ``reverse_sequence``, torch's ``bidirectional=True`` and Flax's
``flip_sequences`` do, and what lets a padded batch equal its unpadded rows.
``go_backwards_layout="keras"`` flips the whole padded sequence (x and mask), as Keras does:
``[0 ... 0, h(x[n-1]) ... h(x[0])]``. Both have the same final state and last output.

**Dropout** follows Gal & Ghahramani (2016): masks drawn once per sequence (per call) and
shared by all its steps, on the inputs (``dropout``) and on the state entering the recurrent
matmul (``recurrent_dropout``); off in eval mode. ``dropout_per_gate=False`` (default):
one mask (B, I) / (B, H) for all gates; ``True``: one per gate, (G, B, I) / (G, B, H), as
Keras's LSTM/GRU with ``implementation=1`` (what Keras 3 uses whenever
``recurrent_dropout > 0``). ``seed`` (an int or a ``torch.Generator``) makes the masks
reproducible without touching torch's global generator.

``implementation``: ``"auto"`` hands standard configurations to torch's fused kernels
(:mod:`rnnlab.layers.fused`) and the rest to the explicit path, ``"fused"`` insists (error
if impossible), ``"explicit"`` runs the built-in cells by hand-derived BPTT
(:mod:`rnnlab.layers.bptt`; other cells: the loop below), ``"reference"`` always runs the
readable autograd loop below (the reference the tests compare every path to), ``"triton"``
runs rnnlab's persistent Triton kernels (:mod:`rnnlab.layers.triton_rnn`; verified under
the Triton interpreter, not yet measured on a GPU, so ``"auto"`` does not pick them). All
paths use the same parameters and agree to float rounding. Under ``torch.compile`` or
``torch.jit.trace``, ``"auto"`` and ``"explicit"`` run the loop below: torch's CPU fused
kernel (``aten.mkldnn_rnn_layer``) cannot be compiled or traced, and the hand-derived BPTT
writes into preallocated buffers, which tracing does not follow. A compiled, traced or
exported call also skips the checks that read ``lengths``' values and the right-padding
test of a ``mask``, so its graph holds for any lengths or mask (tested with
``torch.export``).

**The cell protocol** (what ``RNN(cell)`` needs; it never checks a cell's class)::

    cell.input_size, cell.hidden_size        # I, and the size of the recurrent state
    cell.initial_state(B, *, device, dtype)  # a tensor or a (Named)tuple of tensors
    cell.project_inputs(x)                   # (B, T, I) -> (B, T, ·): the input half
    cell.step(xp_t, state, mask)             # -> (output (B, O), new_state)

``mask`` is the recurrent-dropout mask ((B, H), or None). ``cell.output_size`` defaults to
``hidden_size``. ``examples/custom_cell.py`` is a minimal IndRNN (Li et al. 2018,
``h' = relu(W x + b + u ⊙ h)``) whose output is not its state, run as
``RNN(IndRNNCell(3, 8), return_sequences=True, return_state=True)(x, mask=mask)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .bptt import bptt_run, bptt_supported
from .cells import GRUCell, LSTMCell, SimpleRNNCell
from .fused import fused_run, fused_supported, state_output
from .masking import (
    check_lengths,
    check_mask,
    detach_state,
    flatten_state,
    lengths_to_mask,
    mask_spans,
    mask_to_lengths,
    reverse_padded,
    select_state,
)
from .protocol import Unrolled, check_cell, fit_state, layout_in, layout_out
from .triton_rnn import triton_run, triton_supported, triton_usable

IMPLEMENTATIONS = ("auto", "fused", "explicit", "reference", "triton")
LAYOUTS = ("prefix", "keras")


def _check_rate(name: str, value: float) -> float:
    if not 0.0 <= float(value) < 1.0:
        raise ValueError(f"`{name}` must be a rate in [0, 1), got {value!r}.")
    return float(value)


def _dropout_mask(shape, p: float, like: Tensor) -> Tensor:
    """Inverted-dropout mask from torch's global RNG: Bernoulli(1 - p) / (1 - p)."""
    return F.dropout(torch.ones(shape, device=like.device, dtype=like.dtype), p, training=True)


def _compiling() -> bool:
    """Whether torch.compile / torch.jit.trace is recording this call."""
    return torch.compiler.is_compiling() or torch.jit.is_tracing()


class RNN(nn.Module):
    """Runs a cell over time. See the module docstring for the loop and its semantics.

    Args:
        cell: a :mod:`rnnlab.layers.cells` cell or any cell following the protocol above.
        return_sequences: return all outputs (B, T, O) instead of the last one (B, O).
        return_state: also return the final state (``LSTMState`` for an LSTM).
        go_backwards: read each sequence in reverse; ``go_backwards_layout`` ("prefix", the
            default, or "keras") says how padding is laid out (module docstring).
        stateful: carry the final state of one call into the next (batch size must stay
            the same; ``reset_state()`` starts over). The carried state is detached.
        dropout, recurrent_dropout: Gal & Ghahramani rates for inputs and state.
        dropout_per_gate: one dropout mask per gate (Keras ``implementation=1``).
        seed: an int or a ``torch.Generator`` for the dropout masks (None: torch's global RNG).
        zero_output_for_mask: masked steps output zeros (True) or the previous output.
        batch_first: ``x`` (B, T, I) (True) or (T, B, I); outputs follow.
        implementation: ``"auto"``, ``"fused"``, ``"explicit"``, ``"reference"`` or
            ``"triton"`` (module docstring).

    Call: ``layer(x, lengths=None, initial_state=None, *, mask=None)``; ``x`` may be a
    ``PackedSequence`` (then the sequence output comes back packed).
    """

    def __init__(
        self,
        cell: nn.Module,
        *,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        go_backwards_layout: str = "prefix",
        stateful: bool = False,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        dropout_per_gate: bool = False,
        seed: int | torch.Generator | None = None,
        zero_output_for_mask: bool = True,
        batch_first: bool = True,
        implementation: str = "auto",
    ) -> None:
        super().__init__()
        check_cell(cell)
        if implementation not in IMPLEMENTATIONS:
            raise ValueError(
                f"Received an invalid value for argument `implementation`: expected one of "
                f"{IMPLEMENTATIONS}, got {implementation!r}."
            )
        if go_backwards_layout not in LAYOUTS:
            raise ValueError(
                f"Received an invalid value for argument `go_backwards_layout`: expected one "
                f"of {LAYOUTS}, got {go_backwards_layout!r}."
            )
        self.cell = cell
        self.return_sequences = return_sequences
        self.return_state = return_state
        self.go_backwards = go_backwards
        self.go_backwards_layout = go_backwards_layout
        self.stateful = stateful
        self.dropout = _check_rate("dropout", dropout)
        self.recurrent_dropout = _check_rate("recurrent_dropout", recurrent_dropout)
        self.dropout_per_gate = bool(dropout_per_gate)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.batch_first = bool(batch_first)
        self.implementation = implementation
        if isinstance(seed, torch.Generator) or seed is None:
            self.generator = seed
        elif isinstance(seed, int) and not isinstance(seed, bool):
            self.generator = torch.Generator().manual_seed(seed)
        else:
            raise TypeError(f"`seed` must be an int, a torch.Generator or None, got {seed!r}.")
        if dropout_per_gate and not hasattr(cell, "gates"):
            raise ValueError(
                "`dropout_per_gate=True` needs a cell with a `gates` count whose "
                "project_inputs/step take per-gate masks (the rnnlab cells do); "
                f"got {type(cell).__name__}."
            )
        per_gate = dropout_per_gate and (dropout > 0 or recurrent_dropout > 0)
        if implementation == "fused" and (
            recurrent_dropout > 0 or per_gate or not fused_supported(cell)
        ):
            raise ValueError(
                "`implementation='fused'` needs a configuration torch's kernels compute "
                "(SimpleRNN tanh/relu, LSTM tanh/sigmoid, GRU reset_after=True tanh/sigmoid, "
                f"no recurrent_dropout, no per-gate dropout); got {cell!r} with "
                f"recurrent_dropout={recurrent_dropout}, dropout_per_gate={dropout_per_gate}."
            )
        if implementation == "triton" and not triton_supported(cell):
            raise ValueError(
                "`implementation='triton'` needs a cell the Triton kernels cover (LSTM with "
                f"H <= 256, GRU and SimpleRNN with H <= 64); got {cell!r}."
            )
        self._state = None

    @property
    def input_size(self) -> int:
        return self.cell.input_size

    @property
    def hidden_size(self) -> int:
        return self.cell.hidden_size

    @property
    def output_size(self) -> int:
        return getattr(self.cell, "output_size", self.cell.hidden_size)

    def to_torch(self) -> nn.Module:
        """The equivalent ``torch.nn`` module, weights copied (:func:`rnnlab.layers.to_torch`)."""
        from .interop import to_torch

        return to_torch(self)

    def reset_state(self) -> None:
        """Forget the carried state of a stateful layer (next call starts from zeros)."""
        self._state = None

    def _dropping(self) -> tuple[bool, bool]:
        """(input dropout on, recurrent dropout on) for the current mode."""
        return self.training and self.dropout > 0, self.training and self.recurrent_dropout > 0

    def path(self) -> str:
        """Which backend the next call in the current mode runs (for unmasked or
        right-padded input): ``"fused"``, ``"explicit"`` or ``"triton"``. A mask with holes
        always runs ``"explicit"``."""
        if self.implementation in ("explicit", "reference", "triton"):
            return "explicit" if self.implementation == "reference" else self.implementation
        drop_in, drop_rec = self._dropping()
        if drop_rec or (drop_in and self.dropout_per_gate) or not fused_supported(self.cell):
            return "explicit"
        if self.implementation == "auto" and _compiling():
            return "explicit"
        return "fused"

    def _hand_derived(self) -> bool:
        """Whether the explicit path runs :mod:`rnnlab.layers.bptt` (else the loop)."""
        return self.implementation != "reference" and bptt_supported(self.cell) and not _compiling()

    def uses_fused_path(self) -> bool:
        """Whether the next call in the current mode runs torch's fused kernel."""
        return self.path() == "fused"

    def forward(self, x, lengths: Tensor | None = None, initial_state=None, *, mask=None):
        """``x`` (B, T, I) (or a ``PackedSequence``), optional ``lengths`` (B,) or ``mask``
        (B, T) bool, and ``initial_state``.

        Returns the output ((B, T, O) with ``return_sequences``, else (B, O): the output at
        each sequence's last unmasked step), and with ``return_state`` also the final state.
        """
        x, lengths, packed = layout_in(self, x, lengths, mask)
        out = self.call_batch_first(x, lengths, initial_state, mask=mask)
        return layout_out(self, out, lengths if packed else None)

    def call_batch_first(self, x: Tensor, lengths=None, initial_state=None, *, mask=None):
        """:meth:`forward` on batch-first ``x`` (B, T, I), without layout conversions."""
        result = self.unroll(x, lengths, initial_state, mask=mask)
        out = result.outputs if self.return_sequences else result.last
        return (out, result.final_state) if self.return_state else out

    def run(self, x: Tensor, lengths: Tensor | None = None, initial_state=None, *, mask=None):
        """All outputs (B, T, O) and the final state, whatever the return flags say
        (batch-first ``x`` (B, T, I) whatever ``batch_first`` says)."""
        result = self.unroll(x, lengths, initial_state, mask=mask)
        return result.outputs, result.final_state

    def unroll(self, x: Tensor, lengths=None, initial_state=None, *, mask=None) -> Unrolled:
        """The loop itself: batch-first ``x`` (B, T, I) -> :class:`Unrolled`."""
        x = self._check_input(x)
        B, T, _ = x.shape
        graph = _compiling()  # traced/compiled: no decisions that read tensor values
        lengths = check_lengths(lengths, B, T, x.device, values=not graph)
        if mask is not None:
            if lengths is not None:
                raise ValueError("Pass `lengths` or `mask`, not both.")
            mask = check_mask(mask, B, T, x.device)
            lengths = None if graph else mask_to_lengths(mask)  # right padding: fast path
            if lengths is not None:
                mask = None
                lengths = check_lengths(lengths, B, T, x.device)
        state = self._start_state(B, x, initial_state)
        in_mask, rec_mask = self.dropout_masks(B, x)
        if in_mask is not None and in_mask.dim() == 2:  # shared: commutes with any kernel
            x, in_mask = x * in_mask[:, None], None
        if mask is not None and self.implementation in ("fused", "triton"):
            raise ValueError(
                f"`implementation={self.implementation!r}` runs right padding only; this "
                "`mask` has holes (use implementation='auto' or 'explicit')."
            )
        path = self.path() if mask is None else "explicit"
        if path == "explicit":
            keep = mask if lengths is None else lengths_to_mask(lengths, T)
            if self.go_backwards:
                x, keep = self._reverse(x, keep)
            if self._hand_derived():
                zero = self.zero_output_for_mask
                outputs, final = bptt_run(self.cell, x, state, keep, rec_mask, in_mask=in_mask,
                                          zero_output=zero)  # fmt: skip
                last = state_output(final)  # the built-in cells output their state h
                if keep is not None:
                    last = last * keep.any(1, keepdim=True)  # zeros for an empty row
            else:
                xp = (
                    self.cell.project_inputs(x)
                    if in_mask is None
                    else self.cell.project_inputs(x, in_mask)
                )
                outputs, final, last = self._loop(xp, state, keep, rec_mask)
        else:
            outputs, final, last = self._kernel(path, x, state, lengths, rec_mask)
        if self.stateful:
            self._state = detach_state(final)
        return Unrolled(outputs, final, last)

    def _reverse(self, x: Tensor, keep: Tensor | None):
        """Time-reverse ``x`` and the step mask for ``go_backwards`` in the chosen layout."""
        if keep is None or self.go_backwards_layout == "keras":
            return x.flip(1), None if keep is None else keep.flip(1)
        spans = mask_spans(keep)
        return reverse_padded(x, spans), reverse_padded(keep, spans)

    def _kernel(self, path: str, x: Tensor, state, lengths: Tensor | None, rec_mask):
        """The fused (or Triton) kernel on right padding, with the loop's semantics."""
        T = x.size(1)
        initial = state
        if self.go_backwards:
            x = reverse_padded(x, lengths)
        run_lengths = None if lengths is None else lengths.clamp(min=1)  # kernels need >= 1
        if path == "triton":
            if not triton_usable(x):
                raise ValueError(
                    "`implementation='triton'` runs float32 CUDA tensors (or any float32 "
                    f"tensor with TRITON_INTERPRET=1); got {x.dtype} on {x.device}."
                )
            if rec_mask is not None and rec_mask.dim() != 2:
                raise ValueError("`implementation='triton'` takes shared dropout masks only.")
            outputs, final = triton_run(self.cell, x, state, run_lengths, rec_mask)
            last = state_output(final)
        else:
            outputs, final, last = fused_run(self.cell, x, state, run_lengths)
        if lengths is None:
            return outputs, final, last
        keep = lengths_to_mask(lengths, T)
        empty = (lengths == 0)[:, None]
        if bool(empty.any()):  # rows of length 0: zero outputs, the initial state back
            outputs = outputs * keep[..., None]
            final = select_state(empty, initial, final)
            last = last * ~empty
        if self.go_backwards and self.go_backwards_layout == "keras":
            outputs = reverse_padded(outputs, lengths).flip(1)  # [0 ... 0, h(x[n-1]) ... h(x[0])]
        elif not self.zero_output_for_mask:
            outputs = torch.where(keep[..., None], outputs, last[:, None])
        return outputs, final, last

    def dropout_masks(self, batch_size: int, like: Tensor) -> tuple[Tensor | None, Tensor | None]:
        """The masks of this call: input (B, I) or (G, B, I), recurrent (B, H) or (G, B, H),
        each ``None`` when that dropout is off. Inverted dropout: values 0 or 1 / (1 - p)."""
        drop_in, drop_rec = self._dropping()
        lead = (self.cell.gates,) if self.dropout_per_gate else ()
        in_mask = rec_mask = None
        if drop_in:
            in_mask = self._bernoulli((*lead, batch_size, self.input_size), self.dropout, like)
        if drop_rec:
            shape = (*lead, batch_size, self.hidden_size)
            rec_mask = self._bernoulli(shape, self.recurrent_dropout, like)
        return in_mask, rec_mask

    def _bernoulli(self, shape, p: float, like: Tensor) -> Tensor:
        if self.generator is None:
            return _dropout_mask(shape, p, like)
        g = self.generator
        keep = torch.empty(shape, device=g.device, dtype=like.dtype).bernoulli_(1 - p, generator=g)
        return keep.to(like.device) / (1 - p)

    def _check_input(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor):
            raise TypeError(f"`x` must be a torch.Tensor of shape (B, T, I), got {type(x)}.")
        if x.dim() != 3 or x.size(-1) != self.cell.input_size:
            raise ValueError(
                f"`x` must have shape (batch, time, {self.cell.input_size}) (batch-first, "
                f"input_size={self.cell.input_size}), got {tuple(x.shape)}."
            )
        if x.size(1) == 0:
            raise ValueError("`x` must have at least one time step, got T = 0.")
        return x

    def _start_state(self, B: int, x: Tensor, initial_state):
        if initial_state is None and self.stateful and self._state is not None:
            state = self._state
            first = flatten_state(state)[0]
            if first.size(0) != B:
                raise ValueError(
                    "If an RNN is stateful, the batch size of the input sequences must be the "
                    "same as the batch size of the carried state (call reset_state() to start "
                    f"over).\n- Expected batch size: {first.size(0)}\n- Received batch size: {B}"
                )
            return state
        template = self.cell.initial_state(B, device=x.device, dtype=x.dtype)
        return template if initial_state is None else fit_state(template, initial_state)

    def _loop(self, xp: Tensor, state, keep: Tensor | None, rec_mask: Tensor | None):
        """The explicit loop (the reference every backend matches).

        ``xp`` (B, T, ·) projected inputs in processing order; ``keep`` (B, T) bool step
        mask or None; ``rec_mask`` (B, H) / (G, B, H) or None. Returns (outputs (B, T, O),
        final state, last unmasked output (B, O)).
        """
        # unbind, not xp[:, t]: the backward of T separate selects would zero-fill and add a
        # full (B, T, G*H) gradient T times (O(T^2)); unbind's backward stacks once.
        outputs = []
        last = None
        for t, xp_t in enumerate(xp.unbind(1)):
            out, new_state = self.cell.step(xp_t, state, rec_mask)
            if keep is None:
                state, last = new_state, out
            else:
                k = keep[:, t, None]  # (B, 1)
                state = select_state(k, new_state, state)
                last = torch.where(k, out, 0.0 if last is None else last)
                out = torch.where(k, out, 0.0) if self.zero_output_for_mask else last
            outputs.append(out)
        return torch.stack(outputs, dim=1), state, last

    def extra_repr(self) -> str:
        flags = [
            name
            for name in ("return_sequences", "return_state", "go_backwards", "stateful")
            if getattr(self, name)
        ]
        if self.go_backwards and self.go_backwards_layout != "prefix":
            flags.append(f"go_backwards_layout={self.go_backwards_layout!r}")
        if self.dropout:
            flags.append(f"dropout={self.dropout}")
        if self.recurrent_dropout:
            flags.append(f"recurrent_dropout={self.recurrent_dropout}")
        if self.dropout_per_gate:
            flags.append("dropout_per_gate")
        if not self.zero_output_for_mask:
            flags.append("zero_output_for_mask=False")
        if not self.batch_first:
            flags.append("batch_first=False")
        return ", ".join(flags)


_LAYER_ARGS = """
    Args:
        input_size, hidden_size: I and H.
        init: "keras" (Glorot/orthogonal/zero bias, LSTM forget bias 1) or "torch".
        return_sequences, return_state, go_backwards, go_backwards_layout, stateful,
        dropout, recurrent_dropout, dropout_per_gate, seed, zero_output_for_mask,
        batch_first, implementation: see :class:`RNN`.
"""


class SimpleRNN(RNN):
    __doc__ = "Keras's ``SimpleRNN``: :class:`RNN` over a :class:`SimpleRNNCell`." + _LAYER_ARGS

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        activation: str = "tanh",
        use_bias: bool = True,
        init: str = "keras",
        **rnn_kwargs,
    ) -> None:
        cell = SimpleRNNCell(
            input_size, hidden_size, activation=activation, use_bias=use_bias, init=init
        )
        super().__init__(cell, **rnn_kwargs)


class LSTM(RNN):
    __doc__ = "Keras's ``LSTM``: :class:`RNN` over an :class:`LSTMCell`." + _LAYER_ARGS

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        activation: str = "tanh",
        recurrent_activation: str = "sigmoid",
        use_bias: bool = True,
        unit_forget_bias: bool = True,
        init: str = "keras",
        **rnn_kwargs,
    ) -> None:
        cell = LSTMCell(
            input_size,
            hidden_size,
            activation=activation,
            recurrent_activation=recurrent_activation,
            use_bias=use_bias,
            unit_forget_bias=unit_forget_bias,
            init=init,
        )
        super().__init__(cell, **rnn_kwargs)


class GRU(RNN):
    __doc__ = (
        "Keras's ``GRU``: :class:`RNN` over a :class:`GRUCell` (``reset_after`` picks the "
        "torch/cuDNN form or the textbook one)." + _LAYER_ARGS
    )

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        activation: str = "tanh",
        recurrent_activation: str = "sigmoid",
        use_bias: bool = True,
        reset_after: bool = True,
        init: str = "keras",
        **rnn_kwargs,
    ) -> None:
        cell = GRUCell(
            input_size,
            hidden_size,
            activation=activation,
            recurrent_activation=recurrent_activation,
            use_bias=use_bias,
            reset_after=reset_after,
            init=init,
        )
        super().__init__(cell, **rnn_kwargs)
