"""One time step of each recurrent cell, written as its equations.

Shape legend for the package: B batch, T time, I input features, H hidden units, G gates.

Every cell follows one protocol (Haiku's ``RNNCore``, Keras's documented cell contract)::

    output, new_state = cell(x_t, state)            # x_t (B, I)
    state = cell.initial_state(B, device=..., dtype=...)

and, so that the time loop can hoist the input half of the equations out of the loop,
``forward(x_t, state) == step(project_inputs(x_t), state)``: ``project_inputs`` is the
affine map ``W_ih x + b`` (one matmul over all T steps at once), ``step`` the recurrent half.

Parameters carry torch's names, shapes and gate order (LSTM i, f, g, o; GRU r, z, n) so
weights copy across from ``torch.nn``; the bias follows the chapter and Keras: ONE vector
``bias (G*H,)`` (GRU ``reset_after=True`` keeps torch/Keras's two, ``bias_ih`` and
``bias_hh``). Initialisers follow Keras: Glorot-uniform ``weight_ih``, orthogonal
``weight_hh``, zero bias, LSTM forget-gate bias 1 (Jozefowicz et al. 2015).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def hard_sigmoid(x: Tensor) -> Tensor:
    """Keras 3's ``hard_sigmoid``: ``relu6(x + 3) / 6``, i.e. ``clip(x / 6 + 1/2, 0, 1)``.

    (Keras 2 used the slope 0.2; Keras 3, our parity reference, uses 1/6.)
    """
    return F.relu6(x + 3.0) / 6.0


INITS = ("keras", "torch")

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "hard_sigmoid": hard_sigmoid,
    "softsign": F.softsign,
    "relu": torch.relu,
    "linear": lambda x: x,
}


def get_activation(name: str, argument: str = "activation") -> Callable[[Tensor], Tensor]:
    """Look an activation up by its Keras name; unknown names raise naming the argument."""
    if name not in ACTIVATIONS:
        raise ValueError(
            f"Received an invalid value for argument `{argument}`: expected one of "
            f"{sorted(ACTIVATIONS)}, got {name!r}."
        )
    return ACTIVATIONS[name]


class LSTMState(NamedTuple):
    """LSTM state ``(h, c)``: hidden state (output) and cell state (carry), each (B, H).

    torch's ``nn.LSTM`` returns ``(h, c)`` too. TF1's ``LSTMStateTuple`` (the chapter's
    Listing 5.4) is ``(c, h)``: :meth:`as_tf1` gives that order, so ``state.as_tf1()[0]`` is
    the cell state, as ``states_val.c`` is in TF1.
    """

    h: Tensor
    c: Tensor

    def as_tf1(self) -> tuple[Tensor, Tensor]:
        """The state in TF1 ``LSTMStateTuple(c, h)`` order."""
        return (self.c, self.h)


def _check_sizes(input_size: int, hidden_size: int) -> None:
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(
                f"Received an invalid value for argument `{name}`: expected a positive "
                f"integer, got {value!r}."
            )


class _Cell(nn.Module):
    """Shared parameter set-up; subclasses write the equations."""

    gates: int = 1

    def __init__(
        self, input_size: int, hidden_size: int, *, use_bias: bool = True, init: str = "keras"
    ) -> None:
        super().__init__()
        _check_sizes(input_size, hidden_size)
        if init not in INITS:
            raise ValueError(
                f"Received an invalid value for argument `init`: expected one of {INITS}, "
                f"got {init!r}."
            )
        self.init = init
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.use_bias = use_bias
        gh = self.gates * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(gh, input_size))
        self.weight_hh = nn.Parameter(torch.empty(gh, hidden_size))
        if use_bias:
            self.bias = nn.Parameter(torch.empty(gh))
        else:
            self.register_parameter("bias", None)

    def reset_parameters(self) -> None:
        """``init="keras"`` (default): Glorot-uniform over the whole (G*H, I) kernel, as Keras
        does for its (I, G*H) kernel; orthogonal (G*H, H) recurrent kernel; zero bias.
        ``init="torch"``: torch.nn's U(-1/sqrt(H), 1/sqrt(H)) for every parameter (no forget
        bias), to measure what the chapter's "Xavier initialisation" advice buys."""
        if self.init == "torch":
            bound = self.hidden_size**-0.5
            for p in self.parameters():
                nn.init.uniform_(p, -bound, bound)
            return
        nn.init.xavier_uniform_(self.weight_ih)
        nn.init.orthogonal_(self.weight_hh)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def project_inputs(self, x: Tensor) -> Tensor:
        """Input half of the equations, ``W_ih x + b``: (..., I) -> (..., G*H)."""
        return F.linear(x, self.weight_ih, self.bias)

    def initial_state(
        self, batch_size: int, *, device: torch.device | None = None, dtype=None
    ) -> Tensor:
        return torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)

    def forward(self, x: Tensor, state, recurrent_mask: Tensor | None = None):
        """One step on raw input ``x`` (B, I); see :meth:`step`."""
        return self.step(self.project_inputs(x), state, recurrent_mask)

    def step(self, xp: Tensor, state, recurrent_mask: Tensor | None = None):
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}"


class SimpleRNNCell(_Cell):
    r"""Elman cell (the chapter's simple RNN; Keras ``SimpleRNNCell``).

        h' = act(W_ih x + b + W_hh (m ⊙ h))

    ``m`` is the optional recurrent-dropout mask (B, H). Output and state are both ``h'``.
    Parameters: weight_ih (H, I), weight_hh (H, H), bias (H,).
    """

    gates = 1

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        activation: str = "tanh",
        use_bias: bool = True,
        init: str = "keras",
    ) -> None:
        super().__init__(input_size, hidden_size, use_bias=use_bias, init=init)
        self.activation = activation
        self.act = get_activation(activation)
        self.reset_parameters()

    def step(self, xp: Tensor, h: Tensor, recurrent_mask: Tensor | None = None):
        h_in = h if recurrent_mask is None else h * recurrent_mask
        h = self.act(xp + F.linear(h_in, self.weight_hh))
        return h, h


class LSTMCell(_Cell):
    r"""Long short-term memory cell (Hochreiter & Schmidhuber 1997, with the forget gate of
    Gers et al. 2000), gates in torch/Keras order i, f, g, o:

        i  = σ(W_ii x + b_i + W_hi h̃)      input gate
        f  = σ(W_if x + b_f + W_hf h̃)      forget gate
        g  = act(W_ig x + b_g + W_hg h̃)    candidate cell
        o  = σ(W_io x + b_o + W_ho h̃)      output gate
        c' = f ⊙ c + i ⊙ g
        h' = o ⊙ act(c')

    ``h̃ = m ⊙ h`` with the recurrent-dropout mask ``m`` (Gal & Ghahramani 2016), σ the
    ``recurrent_activation``. State :class:`LSTMState` ``(h, c)``; output ``h'``.
    Parameters: weight_ih (4H, I), weight_hh (4H, H), bias (4H,).
    """

    gates = 4

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
    ) -> None:
        super().__init__(input_size, hidden_size, use_bias=use_bias, init=init)
        self.activation = activation
        self.recurrent_activation = recurrent_activation
        self.act = get_activation(activation)
        self.rec_act = get_activation(recurrent_activation, "recurrent_activation")
        self.unit_forget_bias = unit_forget_bias
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if self.bias is not None and self.unit_forget_bias and self.init == "keras":
            with torch.no_grad():
                self.bias[self.hidden_size : 2 * self.hidden_size].fill_(1.0)

    def initial_state(self, batch_size: int, *, device=None, dtype=None) -> LSTMState:
        zeros = torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)
        return LSTMState(zeros, zeros.clone())

    def gates_of(self, xp: Tensor, state: LSTMState, recurrent_mask: Tensor | None = None):
        """The four gate activations ``(i, f, g, o)``, each (B, H), for one step."""
        h, _ = state
        h_in = h if recurrent_mask is None else h * recurrent_mask
        zi, zf, zg, zo = (xp + F.linear(h_in, self.weight_hh)).chunk(4, dim=-1)
        return self.rec_act(zi), self.rec_act(zf), self.act(zg), self.rec_act(zo)

    def step(self, xp: Tensor, state: LSTMState, recurrent_mask: Tensor | None = None):
        i, f, g, o = self.gates_of(xp, state, recurrent_mask)
        c = f * state.c + i * g
        h = o * self.act(c)
        return h, LSTMState(h, c)


class GRUCell(_Cell):
    r"""Gated recurrent unit (Cho et al. 2014), gates in torch order r, z, n.

    ``reset_after=True`` (torch, cuDNN, Keras 3 default) applies the reset gate after the
    recurrent matmul and so needs two bias vectors:

        r  = σ(W_ir x + b_ir + W_hr h̃ + b_hr)
        z  = σ(W_iz x + b_iz + W_hz h̃ + b_hz)
        n  = act(W_in x + b_in + r ⊙ (W_hn h̃ + b_hn))
        h' = (1 − z) ⊙ n + z ⊙ h

    ``reset_after=False`` is the textbook form (Cho et al.; Keras 2's default): one bias,
    and the reset gate scales the state before its matmul:

        n  = act(W_in x + b_n + W_hn (r ⊙ h̃))

    ``h̃ = m ⊙ h`` with the recurrent-dropout mask ``m``. Parameters: weight_ih (3H, I),
    weight_hh (3H, H), and bias (3H,) or bias_ih, bias_hh (3H,) each.
    """

    gates = 3

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
    ) -> None:
        super().__init__(input_size, hidden_size, use_bias=use_bias and not reset_after, init=init)
        self.use_bias = use_bias
        self.reset_after = reset_after
        if reset_after and use_bias:
            self.bias_ih = nn.Parameter(torch.empty(3 * hidden_size))
            self.bias_hh = nn.Parameter(torch.empty(3 * hidden_size))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.activation = activation
        self.recurrent_activation = recurrent_activation
        self.act = get_activation(activation)
        self.rec_act = get_activation(recurrent_activation, "recurrent_activation")
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if self.init == "torch":  # the base class already drew every parameter
            return
        for b in (self.bias_ih, self.bias_hh):
            if b is not None:
                nn.init.zeros_(b)

    def project_inputs(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight_ih, self.bias if not self.reset_after else self.bias_ih)

    def gates_of(self, xp: Tensor, h: Tensor, recurrent_mask: Tensor | None = None):
        """The gate activations ``(r, z, n)``, each (B, H), for one step."""
        h_in = h if recurrent_mask is None else h * recurrent_mask
        x_r, x_z, x_n = xp.chunk(3, dim=-1)
        if self.reset_after:
            h_r, h_z, h_n = F.linear(h_in, self.weight_hh, self.bias_hh).chunk(3, dim=-1)
            r = self.rec_act(x_r + h_r)
            z = self.rec_act(x_z + h_z)
            n = self.act(x_n + r * h_n)
        else:
            w_rz, w_n = self.weight_hh.split([2 * self.hidden_size, self.hidden_size])
            h_r, h_z = F.linear(h_in, w_rz).chunk(2, dim=-1)
            r = self.rec_act(x_r + h_r)
            z = self.rec_act(x_z + h_z)
            n = self.act(x_n + F.linear(r * h_in, w_n))
        return r, z, n

    def step(self, xp: Tensor, h: Tensor, recurrent_mask: Tensor | None = None):
        _, z, n = self.gates_of(xp, h, recurrent_mask)
        h = (1.0 - z) * n + z * h
        return h, h
