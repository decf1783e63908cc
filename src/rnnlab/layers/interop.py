"""The way in from (and back to) ``torch.nn``: :func:`from_torch` and :func:`to_torch`.

torch's ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` keep two biases per gate, ``b_ih`` and
``b_hh``, that are added to the same pre-activation; rnnlab keeps one (Keras, the chapter),
so ``from_torch`` stores ``b_ih + b_hh`` (exact to float rounding) and ``to_torch`` writes
rnnlab's bias as ``b_ih`` with ``b_hh = 0`` (exact), so rnnlab -> torch -> rnnlab returns the
same numbers. A GRU is ``reset_after=True`` in torch and keeps both of its biases.

Multi-layer and bidirectional modules map to :class:`Stacked` / :class:`Bidirectional`
(torch's between-layer ``dropout`` becomes ``Stacked``'s). The rnnlab layers are built with
``return_sequences=True, return_state=True`` and torch's ``batch_first``, so they return
the whole output sequence and their final states as torch does (states per layer: see
:class:`Stacked`).
"""

from __future__ import annotations

import torch
from torch import nn

from .bidirectional import Bidirectional
from .cells import GRUCell, LSTMCell, SimpleRNNCell
from .fused import fused_supported
from .recurrent import GRU, LSTM, RNN, SimpleRNN
from .stacked import Stacked

__all__ = ["from_torch", "to_torch"]


def _layer_for(module: nn.RNNBase, input_size: int) -> RNN:
    flags = dict(return_sequences=True, return_state=True, batch_first=module.batch_first)
    H, bias = module.hidden_size, module.bias
    if isinstance(module, nn.LSTM):
        return LSTM(input_size, H, use_bias=bias, **flags)
    if isinstance(module, nn.GRU):
        return GRU(input_size, H, use_bias=bias, reset_after=True, **flags)
    activation = "relu" if module.nonlinearity == "relu" else "tanh"
    return SimpleRNN(input_size, H, activation=activation, use_bias=bias, **flags)


@torch.no_grad()
def _copy_from(cell, module: nn.RNNBase, suffix: str) -> None:
    cell.weight_ih.copy_(getattr(module, "weight_ih" + suffix))
    cell.weight_hh.copy_(getattr(module, "weight_hh" + suffix))
    if not module.bias:
        return
    b_ih, b_hh = getattr(module, "bias_ih" + suffix), getattr(module, "bias_hh" + suffix)
    if isinstance(cell, GRUCell):
        cell.bias_ih.copy_(b_ih)
        cell.bias_hh.copy_(b_hh)
    else:
        cell.bias.copy_(b_ih + b_hh)


def from_torch(module: nn.RNNBase) -> nn.Module:
    """An rnnlab layer (or stack) computing what ``module`` (``nn.RNN``, ``nn.LSTM``,
    ``nn.GRU``) computes, with its weights copied. One layer: :class:`RNN` (or
    :class:`Bidirectional`); several: :class:`Stacked`. Same dtype and device."""
    if not isinstance(module, (nn.RNN, nn.LSTM, nn.GRU)):
        raise TypeError(
            f"`module` must be a torch nn.RNN, nn.LSTM or nn.GRU, got {type(module).__name__}."
        )
    if getattr(module, "proj_size", 0):
        raise ValueError(
            f"`module` has proj_size={module.proj_size}: rnnlab's LSTM has no projection."
        )
    first = next(module.parameters())
    layers, size = [], module.input_size
    for k in range(module.num_layers):
        layer = _layer_for(module, size).to(device=first.device, dtype=first.dtype)
        if module.bidirectional:
            layer = Bidirectional(layer)
            _copy_from(layer.forward_layer.cell, module, f"_l{k}")
            _copy_from(layer.backward_layer.cell, module, f"_l{k}_reverse")
        else:
            _copy_from(layer.cell, module, f"_l{k}")
        layers.append(layer)
        size = layer.output_size
    if len(layers) == 1:
        return layers[0]
    return Stacked(*layers, dropout=module.dropout)


def _check_convertible(layer: RNN, where: str) -> None:
    if not isinstance(layer, RNN) or not isinstance(layer.cell, (SimpleRNNCell, LSTMCell, GRUCell)):
        raise TypeError(
            f"`{where}` must be an rnnlab SimpleRNN, LSTM or GRU layer, got {type(layer).__name__}."
        )
    if not fused_supported(layer.cell):
        raise ValueError(
            f"`{where}`: torch.nn computes SimpleRNN tanh/relu, LSTM tanh/sigmoid and GRU "
            f"reset_after=True tanh/sigmoid; got {layer.cell!r}."
        )
    if layer.dropout or layer.recurrent_dropout:
        raise ValueError(
            f"`{where}` has input/recurrent dropout, which torch.nn layers do not have."
        )
    if layer.stateful:
        raise ValueError(f"`{where}` is stateful, which torch.nn layers are not.")


def _directions(layer) -> list[RNN]:
    if isinstance(layer, Bidirectional):
        return [layer.forward_layer, layer.backward_layer]
    return [layer]


def to_torch(model: nn.Module) -> nn.RNNBase:
    """The ``torch.nn`` module computing what ``model`` (an rnnlab SimpleRNN/LSTM/GRU, a
    :class:`Bidirectional` one or a :class:`Stacked` pile of one kind) computes, weights
    copied: rnnlab's bias goes to ``bias_ih`` and ``bias_hh`` is zero."""
    layers = list(model.layers) if isinstance(model, Stacked) else [model]
    dirs = [_directions(layer) for layer in layers]
    for i, d in enumerate(dirs):
        for j, one in enumerate(d):
            _check_convertible(one, f"model.layers[{i}]" if len(layers) > 1 else "model")
            if one.go_backwards != (j == 1):
                raise ValueError(
                    "`model`: a go_backwards layer outside Bidirectional has no torch.nn form."
                )
        if isinstance(layers[i], Bidirectional) and layers[i].merge_mode != "concat":
            raise ValueError(
                "`model`: torch.nn concatenates the two directions; "
                f"merge_mode={layers[i].merge_mode!r}."
            )
    cell = dirs[0][0].cell
    kinds = {
        (type(d.cell), d.cell.hidden_size, len(ds), d.cell.use_bias) for ds in dirs for d in ds
    }
    if len(kinds) != 1 or len({getattr(d.cell, "activation", "") for ds in dirs for d in ds}) != 1:
        raise ValueError("`model`: torch.nn stacks layers of one kind, size, direction and bias.")
    cls = {LSTMCell: nn.LSTM, GRUCell: nn.GRU, SimpleRNNCell: nn.RNN}[type(cell)]
    kwargs = dict(
        num_layers=len(layers),
        bias=cell.use_bias,
        batch_first=dirs[0][0].batch_first,
        bidirectional=len(dirs[0]) == 2,
        dropout=model.dropout if isinstance(model, Stacked) else 0.0,
    )
    if cls is nn.RNN:
        kwargs["nonlinearity"] = cell.activation
    ref = next(cell.parameters())
    out = cls(cell.input_size, cell.hidden_size, **kwargs).to(device=ref.device, dtype=ref.dtype)
    with torch.no_grad():
        for k, d in enumerate(dirs):
            for j, one in enumerate(d):
                sfx = f"_l{k}" + ("_reverse" if j else "")
                c = one.cell
                getattr(out, "weight_ih" + sfx).copy_(c.weight_ih)
                getattr(out, "weight_hh" + sfx).copy_(c.weight_hh)
                if not c.use_bias:
                    continue
                if isinstance(c, GRUCell):
                    getattr(out, "bias_ih" + sfx).copy_(c.bias_ih)
                    getattr(out, "bias_hh" + sfx).copy_(c.bias_hh)
                else:
                    getattr(out, "bias_ih" + sfx).copy_(c.bias)
                    getattr(out, "bias_hh" + sfx).zero_()
    return out
