"""``rnnlab gates RUN [--index I] [--layer L]``: Karpathy et al. (2015)'s gate heatmaps. Records
the gates of recurrent layer ``L`` while a classifier run's model reads test example ``I``
and draws them into ``RUN/gates/example-<I>-layer<L>.png``. Never trains."""

from __future__ import annotations

import os

from .common import UsageError
from .inspect import classifier, require_recurrent, test_split

HELP = "gate heatmaps of a run"
SHARED = ("data_dir", "dry_run")
OVERRIDES = False


def add_arguments(p) -> None:
    p.add_argument("run", help="a classify run folder with a recurrent layer")
    p.add_argument("--index", type=int, default=0, help="test example (0 .. N-1)")
    p.add_argument("--layer", type=int, default=0, help="recurrent layer (0 = first)")


def run(args) -> int:
    gates_run(
        args.run, index=args.index, layer=args.layer, dry_run=getattr(args, "dry_run", False),
        data_dir=getattr(args, "data_dir", None),
    )  # fmt: skip
    return 0


def gates_run(
    path: str | os.PathLike,
    *,
    index: int = 0,
    layer: int = 0,
    dry_run: bool = False,
    data_dir: str | None = None,
    log=print,
) -> str:
    """Draw the gates of layer ``layer`` on test example ``index``; returns the PNG path."""
    import torch

    from rnnlab.data import DATASETS
    from rnnlab.evaluation.gates import plot_gates, record_gates
    from rnnlab.evaluation.gradients import find_recurrent
    from rnnlab.training.checkpoint import RunDir

    run = RunDir.open(path)
    cfg, model = classifier(path, "gates", data_dir=data_dir)
    require_recurrent(cfg, model, "gates")
    x, y = test_split(cfg, 0, dry_run)
    if not 0 <= index < len(x):
        raise UsageError(f"`--index` must be in [0, {len(x)}) for this test split, got {index}")
    xi = x[index : index + 1]
    try:
        rnn = find_recurrent(model, layer)
    except (ValueError, IndexError) as e:
        raise UsageError(f"`--layer`: {e}") from None
    seen: list = []
    handle = rnn.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    try:
        with torch.no_grad():
            prediction = int(model(xi).argmax(-1))
    finally:
        handle.remove()
    trace = record_gates(rnn, seen[0])
    image = xi[0] if xi[0].dim() == 2 and cfg.data.view == "rows" else None
    target = run.path / "gates" / f"example-{index}-layer{layer}.png"
    names = DATASETS[cfg.data.dataset].class_names if cfg.data.dataset in DATASETS else ()
    label, guess = (names[i] if 0 <= i < len(names) else str(i)
                    for i in (int(y[index]), prediction))  # fmt: skip
    title = f"test example {index}: label {label}, predicted {guess}"
    png = plot_gates(trace, 0, target, image, title=title)
    log(f"{title}\nwrote {png}")
    return png
