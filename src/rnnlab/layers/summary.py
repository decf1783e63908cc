"""``summary(model, input_shape)``: a Keras-format table of a model's layers.

The format is the one the chapter prints for Listings 5.1 and 5.2 (Keras 2's classic
``model.summary()``): one row per top-level layer with its name (Keras's snake_case of the
class, numbered from the second of a kind), output shape with ``None`` for the batch, and
parameter count; then total, trainable and non-trainable counts. Output shapes are found by
running one zero batch through the model with forward hooks (in eval mode, no gradients).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import torch
from torch import nn

WIDTHS = (29, 26, 10)  # Keras 2's column widths for Layer (type), Output Shape, Param #


def _snake(name: str) -> str:
    name = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name)
    return re.sub(r"(?<=[A-Z])([A-Z][a-z])", r"_\1", name).lower()


def _shape(out) -> str:
    if isinstance(out, torch.Tensor):
        return str((None, *out.shape[1:])).replace("None,)", "None)")
    if isinstance(out, (tuple, list)) and out:
        return ", ".join(_shape(o) for o in out if isinstance(o, (torch.Tensor, tuple, list)))
    return "?"


def _top_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    children = list(model.named_children())
    return children if children else [("", model)]


def summary(
    model: nn.Module,
    input_shape: Sequence[int],
    *,
    name: str | None = None,
    dtype: torch.dtype = torch.float32,
    print_fn: Callable[[str], None] | None = print,
) -> str:
    """Print (via ``print_fn``; ``None`` prints nothing) and return the table.

    ``input_shape`` excludes the batch, as in Keras: ``(30, 12)`` for Listing 5.1.
    """
    if any((not isinstance(d, int)) or d <= 0 for d in input_shape):
        raise ValueError(
            f"`input_shape` must be positive integers without the batch, got {input_shape!r}."
        )
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    rows, hooks, counts = [], [], {}
    layers = _top_layers(model)
    for _, layer in layers:
        base = _snake(type(layer).__name__)
        n = counts.get(base, 0)
        counts[base] = n + 1
        label = f"{base if n == 0 else f'{base}_{n}'} ({type(layer).__name__})"
        row = {"label": label, "shape": "?", "params": sum(p.numel() for p in layer.parameters())}
        rows.append(row)
        hooks.append(
            layer.register_forward_hook(lambda m, i, o, row=row: row.update(shape=_shape(o)))
        )
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, device=device, dtype=dtype))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)

    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    w1, w2, w3 = WIDTHS
    line, dline = "_" * (w1 + w2 + w3), "=" * (w1 + w2 + w3)
    out = [f'Model: "{name or _snake(type(model).__name__)}"', line]
    out.append(f"{'Layer (type)':<{w1}}{'Output Shape':<{w2}}Param #")
    out.append(dline)
    for k, r in enumerate(rows):
        # a label longer than its column keeps one space before the next (Keras 2 does not)
        label = r["label"].ljust(w1) if len(r["label"]) < w1 else r["label"] + " "
        shape = r["shape"].ljust(w2) if len(r["shape"]) < w2 else r["shape"] + " "
        out.append(f"{label}{shape}{r['params']}")
        out.append(dline if k == len(rows) - 1 else line)
    out += [
        f"Total params: {total:,}",
        f"Trainable params: {trainable:,}",
        f"Non-trainable params: {total - trainable:,}",
        line,
    ]
    text = "\n".join(out)
    if print_fn is not None:
        print_fn(text)
    return text
