"""The one time loop, and the SimpleRNN / LSTM / GRU layers built on it.

Shapes: B batch, T time, I input features, H hidden units, G gates. Layers are batch-first:
``x`` is (B, T, I).

:class:`RNN` owns everything that is about time rather than about one step (Keras's
``RNN(cell)``, Haiku's ``dynamic_unroll``)::

    state = initial_state or carried state (stateful) or zeros
    x = reverse each valid prefix (go_backwards); x = x ⊙ input-dropout mask
    for t in range(T):
        output, new_state = cell.step(W_ih x_t + b, state, recurrent-dropout mask)
        state  = where(t < length, new_state, state)    # padded steps keep the state ...
        output = where(t < length, output, 0)            # ... and output zeros (TF1)

Mask semantics are those of TF1's ``dynamic_rnn(sequence_length=...)`` in the chapter's
Listings 5.3/5.4: outputs past a sequence's length are zero and the final state is the
state at its last valid step. With ``go_backwards`` the valid prefix is read last step
first and outputs are returned in that processing order, as Keras does.

Dropout follows Gal & Ghahramani (2016): ONE mask per sequence, shared by all its steps, on
the inputs (``dropout``) and on the state entering the recurrent matmul
(``recurrent_dropout``); both are off in eval mode.

``implementation``: ``"auto"`` hands standard configurations to torch's fused kernels
(:mod:`rnnlab.layers.fused`), ``"fused"`` insists (error if impossible), ``"explicit"``
always runs the Python loop, ``"triton"`` runs rnnlab's persistent Triton kernels
(:mod:`rnnlab.layers.triton_rnn`; verified under the Triton interpreter, not yet measured on
a GPU, so ``"auto"`` does not pick them). Both paths use the same parameters and agree to float
rounding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .cells import GRUCell, LSTMCell, LSTMState, SimpleRNNCell
from .fused import fused_run, fused_supported
from .masking import check_lengths, detach_state, reverse_padded, select_state
from .triton_rnn import triton_run, triton_supported, triton_usable

IMPLEMENTATIONS = ("auto", "fused", "explicit", "triton")


def _check_rate(name: str, value: float) -> float:
    if not 0.0 <= float(value) < 1.0:
        raise ValueError(f"`{name}` must be a rate in [0, 1), got {value!r}.")
    return float(value)


def _dropout_mask(shape, p: float, like: Tensor) -> Tensor:
    """Inverted-dropout mask: Bernoulli(1 - p) / (1 - p)."""
    return F.dropout(torch.ones(shape, device=like.device, dtype=like.dtype), p, training=True)


class RNN(nn.Module):
    """Runs a cell over time. See the module docstring for the loop and its semantics.

    Args:
        cell: a :mod:`rnnlab.layers.cells` cell (or any cell with the same protocol).
        return_sequences: return all outputs (B, T, H) instead of the last valid one (B, H).
        return_state: also return the final state (``LSTMState`` for an LSTM).
        go_backwards: read each sequence's valid prefix in reverse.
        stateful: carry the final state of one call into the next (batch size must stay
            the same; ``reset_state()`` starts over). The carried state is detached.
        dropout, recurrent_dropout: Gal & Ghahramani rates for inputs and state.
        implementation: ``"auto"``, ``"fused"`` or ``"explicit"``.
    """

    def __init__(
        self,
        cell: nn.Module,
        *,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        implementation: str = "auto",
    ) -> None:
        super().__init__()
        if implementation not in IMPLEMENTATIONS:
            raise ValueError(
                f"Received an invalid value for argument `implementation`: expected one of "
                f"{IMPLEMENTATIONS}, got {implementation!r}."
            )
        self.cell = cell
        self.return_sequences = return_sequences
        self.return_state = return_state
        self.go_backwards = go_backwards
        self.stateful = stateful
        self.dropout = _check_rate("dropout", dropout)
        self.recurrent_dropout = _check_rate("recurrent_dropout", recurrent_dropout)
        self.implementation = implementation
        if implementation == "fused" and (recurrent_dropout > 0 or not fused_supported(cell)):
            raise ValueError(
                "`implementation='fused'` needs a configuration torch's kernels compute "
                "(SimpleRNN tanh/relu, LSTM tanh/sigmoid, GRU reset_after=True tanh/sigmoid, "
                f"no recurrent_dropout); got {cell!r} with recurrent_dropout={recurrent_dropout}."
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
        return self.cell.hidden_size

    def reset_state(self) -> None:
        """Forget the carried state of a stateful layer (next call starts from zeros)."""
        self._state = None

    def uses_fused_path(self) -> bool:
        """Whether the next call in the current mode runs torch's fused kernel."""
        if self.implementation in ("explicit", "triton"):
            return False
        rec_dropout = self.training and self.recurrent_dropout > 0
        return not rec_dropout and fused_supported(self.cell)

    def forward(self, x: Tensor, lengths: Tensor | None = None, initial_state=None):
        """``x`` (B, T, I), optional ``lengths`` (B,) and ``initial_state``.

        Returns the output ((B, T, H) with ``return_sequences``, else (B, H): the output at
        each sequence's last valid step), and with ``return_state`` also the final state.
        """
        outputs, state, lengths = self._run(x, lengths, initial_state)
        if self.return_sequences:
            out = outputs
        else:  # the final state's h is last_valid(outputs, lengths) (dynamic_rnn semantics);
            # taking it avoids a (B, T, H) zero gradient for `outputs` in backward (~7% of a
            # Listing 5.2 step on CPU)
            out = state.h if isinstance(state, LSTMState) else state
        return (out, state) if self.return_state else out

    def run(self, x: Tensor, lengths: Tensor | None = None, initial_state=None):
        """All outputs (B, T, H) and the final state, whatever the return flags say."""
        outputs, state, _ = self._run(x, lengths, initial_state)
        return outputs, state

    def _run(self, x: Tensor, lengths, initial_state):
        x = self._check_input(x)
        B, T, _ = x.shape
        lengths = check_lengths(lengths, B, T, x.device)
        state = self._start_state(B, x, initial_state)
        if self.go_backwards:
            x = reverse_padded(x, lengths)
        if self.training and self.dropout > 0:
            x = x * _dropout_mask((B, 1, x.size(-1)), self.dropout, x)
        rec_mask = None  # one mask per sequence, shared by every step (and every path)
        if self.training and self.recurrent_dropout > 0:
            rec_mask = _dropout_mask((B, self.cell.hidden_size), self.recurrent_dropout, x)
        if self.uses_fused_path():
            outputs, state = fused_run(self.cell, x, state, lengths)
        elif self.implementation == "triton":
            if not triton_usable(x):
                raise ValueError(
                    "`implementation='triton'` runs float32 CUDA tensors (or any float32 "
                    f"tensor with TRITON_INTERPRET=1); got {x.dtype} on {x.device}."
                )
            outputs, state = triton_run(self.cell, x, state, lengths, rec_mask)
        else:
            outputs, state = self._loop(x, state, lengths, rec_mask)
        if self.stateful:
            self._state = detach_state(state)
        return outputs, state, lengths

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
            first = state if isinstance(state, Tensor) else state[0]
            if first.size(0) != B:
                raise ValueError(
                    "If an RNN is stateful, the batch size of the input sequences must be the "
                    "same as the batch size of the carried state (call reset_state() to start "
                    f"over).\n- Expected batch size: {first.size(0)}\n- Received batch size: {B}"
                )
            return state
        if initial_state is None:
            return self.cell.initial_state(B, device=x.device, dtype=x.dtype)
        expected = (B, self.cell.hidden_size)

        def check(s: Tensor) -> Tensor:
            if not isinstance(s, Tensor) or tuple(s.shape) != expected:
                got = tuple(s.shape) if isinstance(s, Tensor) else type(s)
                raise ValueError(f"`initial_state` tensors must have shape {expected}, got {got}.")
            return s

        if isinstance(self.cell, LSTMCell):
            if not isinstance(initial_state, tuple) or len(initial_state) != 2:
                raise TypeError("`initial_state` of an LSTM must be LSTMState(h, c).")
            return LSTMState(check(initial_state[0]), check(initial_state[1]))
        return check(initial_state)

    def _loop(self, x: Tensor, state, lengths: Tensor | None, rec_mask: Tensor | None):
        xp = self.cell.project_inputs(x)  # (B, T, G*H): the input half, hoisted out of the loop
        # unbind, not xp[:, t]: the backward of T separate selects would zero-fill and add a
        # full (B, T, G*H) gradient T times (O(T^2)); unbind's backward stacks once.
        outputs = []
        for t, xp_t in enumerate(xp.unbind(1)):
            out, new_state = self.cell.step(xp_t, state, rec_mask)
            if lengths is None:
                state = new_state
            else:
                keep = (t < lengths)[:, None]  # (B, 1)
                state = select_state(keep, new_state, state)
                out = out * keep
            outputs.append(out)
        return torch.stack(outputs, dim=1), state

    def extra_repr(self) -> str:
        flags = [
            name
            for name in ("return_sequences", "return_state", "go_backwards", "stateful")
            if getattr(self, name)
        ]
        if self.dropout:
            flags.append(f"dropout={self.dropout}")
        if self.recurrent_dropout:
            flags.append(f"recurrent_dropout={self.recurrent_dropout}")
        return ", ".join(flags)


_LAYER_ARGS = """
    Args:
        input_size, hidden_size: I and H.
        init: "keras" (Glorot/orthogonal/zero bias, LSTM forget bias 1) or "torch".
        return_sequences, return_state, go_backwards, stateful, dropout, recurrent_dropout,
        implementation: see :class:`RNN`.
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
