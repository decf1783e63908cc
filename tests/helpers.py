"""Shared test helpers: weight copying between torch.nn / Keras and rnnlab layers (the parity
tests) and a spy on a recurrent layer's per-step masks."""

import torch
from torch import nn

from rnnlab.layers import GRUCell


@torch.no_grad()
def copy_torch_direction(cell, module: nn.RNNBase, layer: int = 0, reverse: bool = False):
    """Copy one (layer, direction) of a torch nn.RNN/LSTM/GRU into an rnnlab cell.

    rnnlab's single bias is torch's b_ih + b_hh (both are added to the same pre-activation),
    except for GRU reset_after, which keeps both.
    """
    sfx = f"_l{layer}" + ("_reverse" if reverse else "")
    cell.weight_ih.copy_(getattr(module, "weight_ih" + sfx))
    cell.weight_hh.copy_(getattr(module, "weight_hh" + sfx))
    b_ih, b_hh = getattr(module, "bias_ih" + sfx), getattr(module, "bias_hh" + sfx)
    if isinstance(cell, GRUCell) and cell.reset_after:
        cell.bias_ih.copy_(b_ih)
        cell.bias_hh.copy_(b_hh)
    else:
        cell.bias.copy_(b_ih + b_hh)


def spy_step_masks(layer) -> list:
    """Wrap ``layer.cell.step`` so that every call appends its recurrent-dropout ``mask``
    (``None`` when off) to the returned list; the step itself runs unchanged."""
    masks: list = []
    step = layer.cell.step

    def spy(xp, state, mask=None):
        masks.append(mask)
        return step(xp, state, mask)

    layer.cell.step = spy
    return masks
