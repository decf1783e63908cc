"""The adding problem: SimpleRNN vs LSTM vs GRU at several lengths T, and gradients through time.

The chapter's central claim about gated cells is long memory: a plain RNN's gradient
``dL/dh_t`` shrinks geometrically with the distance to the loss (Hochreiter 1991; Bengio,
Simard & Frasconi 1994), while the LSTM's additive cell state carries it back. The adding
problem (Hochreiter & Schmidhuber 1997, Exp. 4; Le, Jaitly & Hinton 2015) measures exactly
that: the target is the sum of two values marked somewhere in a length-T sequence, one in
each half; always predicting 1 gives MSE 0.167 (Bai, Kolter & Koltun 2018, Table 1).

Three modes, so that the runs can be split across processes and the table rebuilt later:

- ``train``: for every (T, kind) trains rnnlab's ``adding-<kind>`` preset through
  :func:`rnnlab.training.experiment.train` (the same code path as ``rnnlab train``) with
  ``--data.seq_len=T`` and the budget flags, and appends one JSON line per run to
  ``--results`` (test MSE, seconds per epoch, the equivalent CLI command).
- ``table``: the results as a Markdown table (MSE vs the 0.167 baseline).
- ``gradients``: ``||dL/dh_t||`` at every step for SimpleRNN and LSTM on one test batch
  (:mod:`rnnlab.evaluation.gradients`), for freshly initialised models and, with
  ``--run KIND=RUN_DIR``, trained ones; writes a PNG and prints the text table.

Run::

    python benchmarks/adding_problem.py train --kinds simple_rnn lstm gru --lengths 100 200 400 \\
        --n-train 10000 --epochs 5 --out-dir runs/adding --results runs/adding/results.jsonl
    python benchmarks/adding_problem.py table --results runs/adding/results.jsonl
    python benchmarks/adding_problem.py gradients --seq-len 100 --png gradients_adding.png \\
        --run simple_rnn=runs/adding/adding-simple_rnn-T100 --run lstm=runs/adding/adding-lstm-T100
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from rnnlab.data.synthetic import adding_problem
from rnnlab.evaluation.gradients import (
    format_gradient_table,
    gradient_norms_through_time,
    plot_gradient_norms,
)
from rnnlab.training.config import apply_overrides, load_preset
from rnnlab.training.experiment import ADDING_SEEDS, build_model, load_run, train
from rnnlab.utils import seed_everything

BASELINE_MSE = 1 / 6  # Var(U1 + U2) = 2/12: the MSE of always predicting 1
KINDS = ("simple_rnn", "lstm", "gru")
LABELS = {"simple_rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}


def _overrides(args: argparse.Namespace, T: int) -> list[str]:
    out = [f"--data.seq_len={T}"]
    if args.n_train:
        out.append(f"--data.n_train={args.n_train}")
    if args.epochs:
        out.append(f"--train.epochs={args.epochs}")
    if args.hidden_size:
        out.append(f"--model.hidden_size={args.hidden_size}")
    return out + list(args.override)


def cmd_train(args: argparse.Namespace) -> None:
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for T in args.lengths:
        for kind in args.kinds:
            preset, name = f"adding-{kind}", f"adding-{kind}-T{T}"
            flags = _overrides(args, T)
            cfg = apply_overrides(load_preset(preset), flags)
            cfg.run.out_dir, cfg.run.name = str(out_dir), name
            started = time.perf_counter()
            result = train(cfg, argv=[preset, *flags], progress=False, log=print)
            record = {
                "kind": kind,
                "T": T,
                "n_train": cfg.data.n_train,
                "n_test": cfg.data.n_test,
                "epochs": result["epochs"],
                "hidden_size": cfg.model.hidden_size,
                "batch_size": cfg.data.batch_size,
                "test_mse": result["test_loss"],
                "seconds_per_epoch": result.get("seconds_per_epoch", math.nan),
                "wall_s": time.perf_counter() - started,
                "threads": torch.get_num_threads(),
                "run": result["run"],
                "command": " ".join(
                    [
                        "rnnlab train",
                        preset,
                        *flags,
                        f"--run.out_dir={out_dir}",
                        f"--run.name={name}",
                    ]
                ),
            }
            with open(args.results, "a") as f:
                f.write(json.dumps(record) + "\n")
            print(
                f"T={T} {kind}: test MSE {record['test_mse']:.4f} "
                f"({record['test_mse'] / BASELINE_MSE:.3f} of the baseline)",
                flush=True,
            )


def read_results(path: str) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def cmd_table(args: argparse.Namespace) -> None:
    rows = read_results(args.results)
    rows.sort(key=lambda r: (r["T"], KINDS.index(r["kind"]) if r["kind"] in KINDS else 9))
    print("| T | model | n_train | epochs | s/epoch | test MSE | MSE / 0.167 | beats baseline |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        ratio = r["test_mse"] / BASELINE_MSE
        verdict = "yes (solved)" if ratio < 0.05 else ("yes" if ratio < 0.9 else "no")
        print(
            f"| {r['T']} | {LABELS.get(r['kind'], r['kind'])}({r['hidden_size']}) | "
            f"{r['n_train']:,} | {r['epochs']} | {r['seconds_per_epoch']:.1f} | "
            f"{r['test_mse']:.4f} | {ratio:.3f} | {verdict} |"
        )


def _model(kind: str, T: int, run: str | None, seed: int):
    if run:
        cfg, model = load_run(run)
        if cfg.data.seq_len != T:
            sys.exit(f"error: run {run} was trained at T={cfg.data.seq_len}, not T={T}")
        return model.eval()
    seed_everything(seed)
    cfg = apply_overrides(load_preset(f"adding-{kind}"), [f"--data.seq_len={T}"])
    return build_model(cfg, torch.zeros(T, 2), 0).eval()


def cmd_gradients(args: argparse.Namespace) -> None:
    runs = dict(item.split("=", 1) for item in args.run)
    x, y = adding_problem(args.batch, args.seq_len, seed=ADDING_SEEDS["test"])
    curves = {}
    for kind in args.kinds:
        for state in ("initial", "trained"):
            if state == "trained" and kind not in runs:
                continue
            model = _model(
                kind, args.seq_len, runs.get(kind) if state == "trained" else None, args.seed
            )
            norms = gradient_norms_through_time(model, x, y, F.mse_loss)
            curves[f"{LABELS[kind]} ({state})"] = norms
            with torch.no_grad():
                mse = F.mse_loss(model(x), y).item()
            print(f"{LABELS[kind]} ({state}): batch MSE {mse:.4f}")
    title = f"Adding problem, T={args.seq_len}: gradient reaching h_t (batch of {args.batch})"
    print(format_gradient_table(curves, every=args.every))
    if args.png:
        os.makedirs(os.path.dirname(os.path.abspath(args.png)), exist_ok=True)
        print("wrote", plot_gradient_norms(curves, args.png, title=title))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    modes = parser.add_subparsers(dest="mode", required=True)
    p = modes.add_parser("train", help="train the presets, append results")
    p.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    p.add_argument("--lengths", nargs="+", type=int, default=[100, 200, 400])
    p.add_argument("--n-train", type=int, default=0, help="0: the preset's (20,000)")
    p.add_argument("--epochs", type=int, default=0, help="0: the preset's (10)")
    p.add_argument("--hidden-size", type=int, default=0, help="0: the preset's (128)")
    p.add_argument("--override", action="append", default=[], help="more --key=value flags")
    p.add_argument("--out-dir", default="runs/adding")
    p.add_argument("--results", default="runs/adding/results.jsonl")
    p = modes.add_parser("table", help="print the results as Markdown")
    p.add_argument("--results", default="runs/adding/results.jsonl")
    p = modes.add_parser("gradients", help="||dL/dh_t|| for SimpleRNN vs LSTM")
    p.add_argument("--kinds", nargs="+", choices=KINDS, default=["simple_rnn", "lstm"])
    p.add_argument("--seq-len", type=int, default=100)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--seed", type=int, default=0, help="initialisation seed")
    p.add_argument("--run", action="append", default=[], help="KIND=RUN_DIR of a trained model")
    p.add_argument("--every", type=int, default=None, help="table row spacing")
    p.add_argument("--png", default="")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    {"train": cmd_train, "table": cmd_table, "gradients": cmd_gradients}[args.mode](args)


if __name__ == "__main__":
    main()
