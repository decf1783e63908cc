"""``summary(model, input_shape)``: a Keras-format table of a model's layers.

The format is the one the chapter prints for Listings 5.1 and 5.2 (Keras 2's classic
``model.summary()``): one row per top-level layer with its name (Keras's snake_case of the
class, numbered from the second of a kind), output shape with ``None`` for the batch, and
parameter count; then total, trainable and non-trainable counts. Output shapes are found by
running one zero batch through the model with forward hooks (in eval mode, no gradients).

``depth`` (as torchinfo's) also lists nested modules, indented under their parent, down to
that many levels (``depth=1``, the default, is Keras's table). After the table, one line
per recurrent layer says which path it runs (:meth:`rnnlab.layers.RNN.path`): ``fused``
(torch's kernel), ``explicit`` (the Python loop) or ``triton``, in eval mode and, where it
differs, in training mode (recurrent dropout runs the explicit loop).
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


CONTAINERS = (nn.ModuleList, nn.ModuleDict)  # no forward of their own: list their children


def _children(module: nn.Module):
    for name, child in module.named_children():
        if isinstance(child, CONTAINERS):
            yield from _children(child)
        else:
            yield name, child


def _layers(model: nn.Module, depth: int) -> list[tuple[int, nn.Module]]:
    """(level, module) rows: the top-level layers and, to ``depth``, their children."""

    def walk(module: nn.Module, level: int):
        rows = []
        for _, child in _children(module):
            rows.append((level, child))
            if level + 1 < depth:
                rows += walk(child, level + 1)
        return rows

    rows = walk(model, 0)
    return rows if rows else [(0, model)]


def _is_recurrent(module: nn.Module) -> bool:
    return hasattr(module, "cell") and callable(getattr(module, "path", None))


def _path_line(where: str, layer: nn.Module) -> str:
    was = layer.training
    try:
        evaluating = layer.train(False).path()
        training = layer.train(True).path()
    finally:
        layer.train(was)
    extra = "" if training == evaluating else f" (training: {training})"
    return f"  {where} ({type(layer).__name__}): {evaluating}{extra}"


def _paths(model: nn.Module, labels: dict[int, str]) -> list[str]:
    """``where (Type): path`` for every recurrent layer (a module with ``cell`` and
    ``path()``), named by its row label or its place under the top-level row."""
    if _is_recurrent(model):
        return [_path_line(_snake(type(model).__name__), model)]
    lines = []

    def walk(module: nn.Module, where: str):
        for name, child in _children(module):
            here = labels.get(id(child)) or (f"{where}/{name}" if where else name)
            here = here.split(" (")[0]
            if _is_recurrent(child):
                lines.append(_path_line(here, child))
            walk(child, here)

    walk(model, "")
    return lines


def summary(
    model: nn.Module,
    input_shape: Sequence[int],
    *,
    name: str | None = None,
    dtype: torch.dtype = torch.float32,
    depth: int = 1,
    print_fn: Callable[[str], None] | None = print,
) -> str:
    """Print (via ``print_fn``; ``None`` prints nothing) and return the table.

    ``input_shape`` excludes the batch, as in Keras: ``(30, 12)`` for Listing 5.1;
    ``dtype=torch.long`` for token ids (a model starting with an ``Embedding``).
    ``depth``: how many levels of nested modules to list (1: the top-level layers).
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"`depth` must be a positive integer, got {depth!r}.")
    if any((not isinstance(d, int)) or d <= 0 for d in input_shape):
        raise ValueError(
            f"`input_shape` must be positive integers without the batch, got {input_shape!r}."
        )
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    rows, hooks, counts, labels = [], [], {}, {}
    for level, layer in _layers(model, depth):
        base = _snake(type(layer).__name__)
        n = counts.get(base, 0)
        counts[base] = n + 1
        label = f"{base if n == 0 else f'{base}_{n}'} ({type(layer).__name__})"
        labels.setdefault(id(layer), label)
        label = label if level == 0 else "  " * level + "└ " + label
        row = {
            "label": label,
            "shape": "?" if level == 0 else "--",
            "params": sum(p.numel() for p in layer.parameters()),
        }
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
    paths = _paths(model, labels)
    if paths:
        out += ["Recurrent paths (fused: torch's kernel; explicit: the Python loop):", *paths]
    text = "\n".join(out)
    if print_fn is not None:
        print_fn(text)
    return text
