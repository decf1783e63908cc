r"""Ensembles of classifier runs: the mean of the members' predicted distributions.

For M runs with logits :math:`f_m(x)`, the ensemble predicts

.. math::  p(y \mid x) = \frac{1}{M} \sum_{m=1}^{M} \operatorname{softmax}(f_m(x))_y,
           \qquad \hat y = \arg\max_y p(y \mid x)

(averaged probabilities, as Lakshminarayanan et al. 2017's deep ensembles; the members
differ only in their seed). Each run is read with its own config (vocabulary, scaler) and
its final weights (``experiment.load_run``); the splits' labels must agree. Whether an
ensemble is used is decided on the validation split, never on test.

``rnnlab ensemble RUN RUN ... [--data-dir DIR]`` (:mod:`rnnlab.cli.ensemble`) prints each
member's and the ensemble's validation and test accuracy.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["ensemble_accuracy", "mean_probabilities", "split_probabilities"]


def split_probabilities(model: nn.Module, split: tuple, batch_size: int = 1000) -> Tensor:
    """Softmax probabilities (N, C) of ``model`` (eval mode) on ``split`` = ``(x, y)`` or
    ``(x, y, lengths)`` (padded sequences: ``model(x, lengths)``)."""
    x, lengths = split[0], split[2] if len(split) > 2 else None
    model.eval()
    parts = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            args = [x[i : i + batch_size]]
            if lengths is not None:
                args.append(lengths[i : i + batch_size])
            parts.append(torch.softmax(model(*args).float(), -1))
    return torch.cat(parts)


def mean_probabilities(probabilities: Sequence[Tensor]) -> Tensor:
    """The ensemble's (N, C): the mean of the members' (N, C) probabilities."""
    if not probabilities:
        raise ValueError("an ensemble needs at least one member, got none")
    shapes = {tuple(p.shape) for p in probabilities}
    if len(shapes) != 1:
        raise ValueError(f"the members' probabilities must have one shape, got {sorted(shapes)}")
    return torch.stack(list(probabilities)).mean(0)


def ensemble_accuracy(
    runs: Sequence[str | os.PathLike], *, data_dir: str | None = None
) -> dict[str, dict]:
    """``{split: {"members": [accuracy per run], "ensemble": accuracy}}`` for the runs'
    ``val`` (when they have one) and ``test`` splits."""
    from rnnlab.training.experiment import build_data, load_run

    probs: dict[str, list[Tensor]] = {}
    labels: dict[str, Tensor] = {}
    for run in runs:
        cfg, model = load_run(run)
        if data_dir is not None:
            cfg.data.data_dir = data_dir
        data = build_data(cfg)
        for name, split in (("val", data.val), ("test", data.test)):
            if split is None:
                continue
            if name in labels and not torch.equal(labels[name], split[1]):
                raise ValueError(f"{run}: its {name} labels differ from the first run's")
            labels[name] = split[1]
            probs.setdefault(name, []).append(
                split_probabilities(model, split, cfg.train.eval_batch_size)
            )

    def accuracy(p: Tensor, y: Tensor) -> float:
        return float((p.argmax(-1) == y).float().mean())

    return {
        name: {"members": [accuracy(p, labels[name]) for p in members],
               "ensemble": accuracy(mean_probabilities(members), labels[name])}
        for name, members in probs.items()
    }  # fmt: skip
