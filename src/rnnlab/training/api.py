"""``rnnlab.fit``: train any ``nn.Module`` on arrays or a ``torch.utils.data.Dataset`` from
Python, as Keras's ``model.fit(x, y)`` does, through rnnlab's one training loop (the same
progress bar and epoch lines, NaN guard, early stopping, checkpoints).

    import numpy as np, rnnlab
    from rnnlab.models.classifiers import SequenceClassifier

    x = np.random.randn(200, 30, 3).astype("float32")    # (N, T, C)
    y = (x[:, :, 0].mean(1) > 0).astype("int64")         # class indices
    model = SequenceClassifier("lstm", 3, 32, 2)
    history = rnnlab.fit(model, x, y, epochs=5, val_split=0.2)
    history["val_accuracy"]                              # one value per epoch

What is trained is read from ``y`` (or ``task=``):

- integer ``y`` -> ``classify``: ``model(x[, lengths])`` returns logits ``(B, K)``; the loss
  is cross-entropy, the metrics ``loss`` and ``accuracy``;
- float ``y`` -> ``regress``: MSE between ``model(x[, lengths])`` and ``y`` (same shape);
- no ``y`` -> ``reconstruct``: MSE between ``model(x[, lengths])`` and ``x`` (autoencoders),
  over the valid steps when ``lengths`` is given.

``x`` is an array or tensor ``(N, ...)``, a list of ragged ``(T_i, C)`` arrays (padded here,
``lengths`` derived), or a ``Dataset`` whose items are ``x_i``, ``(x_i, y_i)`` or ``(x_i, y_i,
length_i)``. With ``lengths`` (right padding) the model is called as ``model(x, lengths)``.
``val_split`` holds out a random share of the examples (seeded by ``seed``) unless
``val_data=(x, y[, lengths])`` is given; the validation loss then picks the best epoch (whose
weights ``restore_best`` puts back) and drives ``patience``. ``checkpoint_dir`` writes a run
folder (``checkpoints/last.pt`` and ``best.pt``, ``metrics.jsonl``) as ``rnnlab train`` does.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab.data.sequences import lengths_to_mask, pad_sequences
from rnnlab.training.checkpoint import RunDir
from rnnlab.training.loop import Batches, Checkpointing, FitOptions, FitState, evaluate
from rnnlab.training.loop import fit as _fit
from rnnlab.training.update import Update

__all__ = ["TASKS", "History", "evaluate_arrays", "fit"]

TASKS = ("classify", "regress", "reconstruct")
VAL_SEED_OFFSET = 12345  # the validation split of seed s is drawn with seed s + this


@dataclass
class History:
    """What :func:`fit` did: one record per epoch (the lines of ``metrics.jsonl``), the run
    folder (with ``checkpoint_dir``) and the loop's final :class:`FitState`."""

    records: list[dict] = field(default_factory=list)
    run: Path | None = None
    state: FitState | None = None

    def __getitem__(self, key: str) -> list[float]:
        """``history["val_loss"]``: that metric over the epochs."""
        return [r[key] for r in self.records if key in r]


def _as_tensor(a, name: str) -> Tensor:
    t = torch.as_tensor(np.asarray(a)) if not isinstance(a, Tensor) else a
    if not (
        t.is_floating_point()
        or t.dtype in (torch.int32, torch.int64, torch.int16, torch.uint8, torch.int8, torch.bool)
    ):
        raise ValueError(f"`{name}` must hold numbers, got dtype {t.dtype}")
    return t


def _from_dataset(ds) -> tuple:
    items = [ds[i] for i in range(len(ds))]
    if not items:
        raise ValueError("the Dataset is empty")
    items = [it if isinstance(it, (tuple, list)) else (it,) for it in items]
    if len({len(it) for it in items}) != 1:
        raise ValueError("the Dataset's items must all be x, (x, y) or (x, y, length)")
    xs = [_as_tensor(it[0], "x").float() for it in items]
    y = torch.stack([_as_tensor(it[1], "y") for it in items]) if len(items[0]) > 1 else None
    lengths = torch.tensor([int(it[2]) for it in items]) if len(items[0]) > 2 else None
    return xs, y, lengths


def _inputs(x, y, lengths) -> tuple[Tensor, Tensor | None, Tensor | None]:
    if isinstance(x, torch.utils.data.Dataset):
        x, y2, l2 = _from_dataset(x)
        y = y if y is not None else y2
        lengths = lengths if lengths is not None else l2
    if isinstance(x, (list, tuple)) and len({np.shape(s) for s in x}) > 1:  # ragged (T_i, C)
        padded, found = pad_sequences([_as_tensor(s, "x").float() for s in x])
        x, lengths = padded, lengths if lengths is not None else found
    elif isinstance(x, (list, tuple)):
        x = torch.stack([_as_tensor(s, "x") for s in x])
    x = _as_tensor(x, "x").float()
    y = _as_tensor(y, "y") if y is not None else None
    lengths = _as_tensor(lengths, "lengths").long() if lengths is not None else None
    for name, t in (("y", y), ("lengths", lengths)):
        if t is not None and len(t) != len(x):
            raise ValueError(f"`{name}` must have one entry per example ({len(x)}), got {len(t)}")
    if lengths is not None and (lengths.min() < 1 or lengths.max() > x.shape[1]):
        raise ValueError(f"`lengths` must lie in [1, {x.shape[1]}] (x's steps), got "
                         f"{int(lengths.min())}..{int(lengths.max())}")  # fmt: skip
    if not torch.isfinite(x).all():
        raise ValueError("`x` holds NaN or inf; fill or drop them first")
    return x, y, lengths


def _task(y: Tensor | None, task: str | None) -> str:
    if task is not None:
        if task not in TASKS:
            raise ValueError(f"`task` must be one of {', '.join(TASKS)}, got {task!r}")
        return task
    if y is None:
        return "reconstruct"
    return "regress" if y.is_floating_point() else "classify"


def _call(model: nn.Module, x: Tensor, lengths: Tensor | None) -> Tensor:
    return model(x) if lengths is None else model(x, lengths)


def _loss(task: str, out: Tensor, target: Tensor, lengths: Tensor | None) -> Tensor:
    if task == "classify":
        return F.cross_entropy(out, target)
    if task == "reconstruct" and lengths is not None:
        mask = lengths_to_mask(lengths, out.shape[1]).to(out.device)
        return F.mse_loss(out[mask], target[mask])
    return F.mse_loss(out.float(), target.float())


def _unpack(task: str, batch):
    """A batch of the tensors :func:`fit` batched, as ``(x, target, lengths)``."""
    x, rest = batch[0], list(batch[1:])
    target = x if task == "reconstruct" else rest.pop(0)
    return x, target, (rest[0] if rest else None)


def _steps(task: str, update: Update):
    def train_step(model, batch, optimizer) -> dict[str, float]:
        x, target, lengths = _unpack(task, batch)
        model.train()
        with update.autocast():
            out = _call(model, x, lengths)
            loss = _loss(task, out, target, lengths)
        metrics = {"loss": loss.item(), **update(loss, model, optimizer)}
        if task == "classify":
            metrics["accuracy"] = (out.detach().argmax(-1) == target).float().mean().item()
        return metrics

    @torch.no_grad()
    def eval_step(model, batch) -> dict[str, float]:
        x, target, lengths = _unpack(task, batch)
        model.eval()
        out = _call(model, x, lengths)
        metrics = {"loss": _loss(task, out, target, lengths).item()}
        if task == "classify":
            metrics["accuracy"] = (out.argmax(-1) == target).float().mean().item()
        return metrics

    return train_step, eval_step


def fit(
    model: nn.Module,
    x,
    y=None,
    *,
    lengths=None,
    task: str | None = None,
    val_split: float = 0.1,
    val_data: Sequence | None = None,
    epochs: int = 10,
    batch_size: int = 32,
    lr: float = 1e-3,
    optimizer: torch.optim.Optimizer | None = None,
    clip_norm: float | None = None,
    patience: int = 0,
    restore_best: bool = True,
    checkpoint_dir: str | os.PathLike | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = True,
    log: Callable[[str], None] | None = print,
) -> History:
    """Train ``model`` in place on ``x`` (and ``y``); see the module docstring. ``optimizer``
    defaults to Adam(``lr``); ``clip_norm`` clips the global gradient norm (Pascanu et al.
    2013). Returns a :class:`History`; ``model`` ends in eval mode with the best validation
    epoch's weights (``restore_best``) or the last ones."""
    if epochs < 1 or batch_size < 1 or not 0.0 <= val_split < 1.0:
        raise ValueError(f"`epochs` and `batch_size` must be >= 1 and `val_split` in [0, 1), "
                         f"got {epochs}, {batch_size}, {val_split}")  # fmt: skip
    torch.manual_seed(seed)
    x, y, lengths = _inputs(x, y, lengths)
    task = _task(y, task)
    if task != "reconstruct" and y is None:
        raise ValueError(f"task {task!r} needs `y`")
    tensors = tuple(t for t in (x, None if task == "reconstruct" else y, lengths) if t is not None)
    val = None
    if val_data is not None:
        vx, vy, vl = _inputs(val_data[0], val_data[1] if len(val_data) > 1 else None,
                             val_data[2] if len(val_data) > 2 else None)  # fmt: skip
        val = tuple(t for t in (vx, None if task == "reconstruct" else vy, vl) if t is not None)
    elif val_split > 0:
        order = torch.randperm(
            len(x), generator=torch.Generator().manual_seed(seed + VAL_SEED_OFFSET)
        )
        n_val = max(1, int(len(x) * val_split))
        if n_val >= len(x):
            raise ValueError(f"`val_split` {val_split} of {len(x)} examples leaves none to train")
        val = tuple(t[order[:n_val]] for t in tensors)
        tensors = tuple(t[order[n_val:]] for t in tensors)
    model.to(device)
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=lr)
    train_step, eval_step = _steps(task, Update(clip_norm=clip_norm))
    train_data = Batches(*tensors, batch_size=batch_size, seed=seed)
    val_batches = Batches(*val, batch_size=max(batch_size, 256), shuffle=False) if val else None
    history = History()
    run = None
    if checkpoint_dir is not None:
        name = f"fit-{time.strftime('%Y%m%d-%H%M%S')}"
        config = {"fit": {"task": task, "epochs": epochs, "batch_size": batch_size, "lr": lr,
                          "seed": seed, "model": type(model).__name__}}  # fmt: skip
        run = RunDir.create(checkpoint_dir, name, config, [])
    options = FitOptions(patience=patience, restore_best=restore_best, progress=progress, log=log)
    try:
        history.state = _fit(
            model, optimizer, train_data, train_step=train_step, eval_step=eval_step,
            val_data=val_batches, epochs=epochs, device=device,
            checkpointing=Checkpointing(run), options=options,
            on_epoch_end=lambda state, record: history.records.append(dict(record)),
        )  # fmt: skip
    except BaseException:
        if run is not None:
            run.abort()
        raise
    history.run = run.path if run is not None else None
    model.eval()
    return history


def evaluate_arrays(model: nn.Module, x, y=None, *, lengths=None, task: str | None = None,
                    batch_size: int = 256, device="cpu") -> dict[str, float]:  # fmt: skip
    """The metrics of :func:`fit`'s eval step (``loss``, and ``accuracy`` when classifying)
    on ``x`` / ``y``, in eval mode."""
    x, y, lengths = _inputs(x, y, lengths)
    task = _task(y, task)
    tensors = tuple(t for t in (x, None if task == "reconstruct" else y, lengths) if t is not None)
    _, eval_step = _steps(task, Update())
    return evaluate(model, eval_step, Batches(*tensors, batch_size=batch_size, shuffle=False),
                    device)  # fmt: skip
