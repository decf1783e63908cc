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

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .activations import ACTIVATIONS, get_activation, hard_sigmoid

__all__ = [
    "ACTIVATIONS", "GRUCell", "LSTMCell", "LSTMState", "SimpleRNNCell", "get_activation",
    "hard_sigmoid",
]  # fmt: skip


INITS = ("keras", "torch")


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

    def input_bias(self) -> Tensor | None:
        return self.bias

    def project_inputs(self, x: Tensor, dropout_mask: Tensor | None = None) -> Tensor:
        """Input half of the equations, ``W_ih (m ⊙ x) + b``: (B, [T,] I) -> (B, [T,] G*H).

        ``dropout_mask`` (optional): (B, I), one mask for every gate, or (G, B, I), one per
        gate (Keras's ``implementation=1``: gate ``g`` reads ``m_g ⊙ x``).
        """
        w, b = self.weight_ih, self.input_bias()
        if dropout_mask is None:
            return F.linear(x, w, b)
        m = dropout_mask.unsqueeze(-2) if x.dim() == 3 else dropout_mask  # over time
        if dropout_mask.dim() == 2:
            return F.linear(x * m, w, b)
        G = dropout_mask.size(0)  # x_g = m_g ⊙ x, then gate g's rows of W_ih
        xg = x.unsqueeze(0) * m  # (G, B, [T,] I)
        z = torch.einsum("gb...i,ghi->b...gh", xg, w.view(G, -1, w.size(1))).flatten(-2)
        return z if b is None else z + b

    def recurrent_matmul(
        self, h: Tensor, mask: Tensor | None, weight: Tensor, bias: Tensor | None = None
    ) -> Tensor:
        """``W_hh (m ⊙ h) + b``: (B, H) -> (B, G*H) with the recurrent-dropout mask ``m``,
        (B, H) shared by the gates or (G, B, H) one per gate."""
        if mask is None:
            return F.linear(h, weight, bias)
        if mask.dim() == 2:
            return F.linear(h * mask, weight, bias)
        G = mask.size(0)
        w = weight.view(G, -1, weight.size(1))  # (G, H_out, H)
        z = torch.bmm(h.unsqueeze(0) * mask, w.transpose(1, 2)).transpose(0, 1)  # (B, G, H_out)
        z = z.reshape(h.size(0), -1)
        return z if bias is None else z + bias

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
        h = self.act(xp + self.recurrent_matmul(h, recurrent_mask, self.weight_hh))
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
        z = xp + self.recurrent_matmul(state[0], recurrent_mask, self.weight_hh)
        zi, zf, zg, zo = z.chunk(4, dim=-1)
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

    def input_bias(self) -> Tensor | None:
        return self.bias if not self.reset_after else self.bias_ih

    def gates_of(self, xp: Tensor, h: Tensor, recurrent_mask: Tensor | None = None):
        """The gate activations ``(r, z, n)``, each (B, H), for one step."""
        x_r, x_z, x_n = xp.chunk(3, dim=-1)
        m = recurrent_mask
        if self.reset_after:
            h_rzn = self.recurrent_matmul(h, m, self.weight_hh, self.bias_hh)
            h_r, h_z, h_n = h_rzn.chunk(3, dim=-1)
            r = self.rec_act(x_r + h_r)
            z = self.rec_act(x_z + h_z)
            n = self.act(x_n + r * h_n)
        else:
            w_rz, w_n = self.weight_hh.split([2 * self.hidden_size, self.hidden_size])
            m_rz, m_n = (m, m) if m is None or m.dim() == 2 else (m[:2], m[2])
            h_r, h_z = self.recurrent_matmul(h, m_rz, w_rz).chunk(2, dim=-1)
            r = self.rec_act(x_r + h_r)
            z = self.rec_act(x_z + h_z)
            h_n = h if m_n is None else h * m_n
            n = self.act(x_n + F.linear(r * h_n, w_n))
        return r, z, n

    def step(self, xp: Tensor, h: Tensor, recurrent_mask: Tensor | None = None):
        _, z, n = self.gates_of(xp, h, recurrent_mask)
        h = (1.0 - z) * n + z * h
        return h, h


def activations_within(cell, allowed) -> bool:
    """Whether ``cell`` is a built-in :class:`SimpleRNNCell`, :class:`LSTMCell` or
    :class:`GRUCell` itself (not a subclass) whose activations are all in ``allowed``: what a
    backend that writes these three cells' equations out (BPTT, Triton) can compute."""
    if type(cell) is SimpleRNNCell:
        return cell.activation in allowed
    if type(cell) in (LSTMCell, GRUCell):
        return cell.activation in allowed and cell.recurrent_activation in allowed
    return False
