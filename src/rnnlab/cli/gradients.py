"""``rnnlab gradients RUN|PRESET``: Pascanu et al. (2013)'s ``||dL/dh_t||`` through time of a
trained run (or of a preset's untrained model) on test examples. Prints the table; merges
the curve into ``gradients.json`` and redraws every curve there into ``gradients.png`` (in
the run folder, or ``--out``)."""

from __future__ import annotations

import math
import os
from pathlib import Path

from torch import Tensor, nn

from .common import UsageError, check_model_size, merge_json, open_run, positive, resolve_config
from .inspect import require_recurrent, test_split

HELP = "||dL/dh_t|| of a run or preset"
SHARED = ("data_dir", "dry_run")
OVERRIDES = True  # for a PRESET


def add_arguments(p) -> None:
    p.add_argument("target", metavar="RUN|PRESET")
    p.add_argument("--layer", type=int, default=0, help="recurrent layer (0 = first)")
    p.add_argument("--batch", type=positive, default=64, help="test examples averaged")
    p.add_argument("--out", default=None, help="folder for gradients.json/.png")


def run(args) -> int:
    from rnnlab.training import experiment
    from rnnlab.utils import seed_everything

    target = Path(args.target)
    if (target / "config.json").is_file():
        if args.overrides:
            raise UsageError(
                f"overrides apply to a PRESET, not to RUN {target}: {args.overrides[0]}"
            )
        cfg, model = open_run(target, data_dir=getattr(args, "data_dir", None))
        name, out = target.name, target
    else:
        cfg = resolve_config(args, args.target)
        check_model_size(cfg)
        seed_everything(cfg.train.seed)
        data = experiment.build_data(cfg, dry_run=True)
        model = experiment.build_model(cfg, data.train[0][0], max(data.num_classes, 0))
        name, out = f"{cfg.run.preset} (untrained)", args.out
    if args.out is not None:
        out = args.out
    gradients_run(
        cfg, model, name, out=out, batch=args.batch, layer=args.layer,
        dry_run=getattr(args, "dry_run", False),
    )  # fmt: skip
    return 0


def gradients_run(
    cfg,
    model: nn.Module,
    name: str,
    *,
    out: str | os.PathLike | None,
    batch: int = 64,
    layer: int = 0,
    dry_run: bool = False,
    log=print,
) -> Tensor:
    """``||dL/dh_t||`` of recurrent layer ``layer`` on ``batch`` test examples, shape
    ``(T,)``: print the table; with ``out`` merge it into ``out/gradients.json`` and redraw
    ``out/gradients.png``."""
    import torch
    import torch.nn.functional as F

    from rnnlab.evaluation.gradients import (
        format_gradient_table,
        gradient_norms_through_time,
        plot_gradient_norms,
    )
    from rnnlab.training import families

    require_recurrent(cfg, model, "gradients")
    x, y = test_split(cfg, batch, dry_run)
    model.eval()
    loss_fn = families.get(cfg.model.family).loss or F.mse_loss
    try:
        curve = gradient_norms_through_time(model, x, y, loss_fn, layer=layer)
    except (IndexError, ValueError) as e:
        raise UsageError(f"`--layer`: {e}") from None
    log(format_gradient_table({name: curve}))
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        data = merge_json(out / "gradients.json", {name: curve.tolist()})
        curves = {
            k: torch.tensor([math.nan if v is None else v for v in vals], dtype=torch.float64)
            for k, vals in data.items()
            if isinstance(vals, list) and vals
        }
        png = plot_gradient_norms(curves, out / "gradients.png", title=f"{name}: layer {layer}")
        log(f"wrote {out / 'gradients.json'} and {png}")
    return curve
