"""The chapter's LSTM-tuning advice, measured on Fashion-MNIST rows (issue 9, item 4).

Each row changes one thing in the ``lstm-rows`` preset (LSTM(128), Adam + one-cycle, max lr
3e-3, clipping at 1, head dropout 0.1, keras init, tanh, 10% held out) and trains it for the
same number of epochs. Two steps:

    python benchmarks/chapter_advice.py run --data-dir ../shared/datasets
    python benchmarks/chapter_advice.py table --data-dir ../shared/datasets

``run`` trains every row that has no finished run folder yet (``--jobs`` at a time, one
thread each); ``table`` measures each finished run's accuracy on its own training split in
eval mode (cached in the run folder as ``train_eval.json``) and prints the Markdown table of
docs/results/chapter_advice.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

EPOCHS = 4

# (run name, the advice it tests, what changes, overrides of the lstm-rows preset)
ROWS: list[tuple[str, str, str, list[str]]] = [
    ("baseline", "—", "`lstm-rows` as is (Adam, keras init, tanh, no L2, LSTM(128), 60k)", []),
    ("sgd", "optimizer", "SGD + momentum 0.9, one-cycle max lr 0.05",
     ["--train.optimizer=sgd", "--train.momentum=0.9", "--train.lr=0.05"]),
    ("rmsprop", "optimizer", "RMSprop, lr 1e-3, cosine schedule",
     ["--train.optimizer=rmsprop", "--train.lr=1e-3", "--train.schedule=cosine"]),
    ("rmsprop-3e-3", "optimizer", "RMSprop, lr 3e-3 (Adam's peak lr), cosine schedule",
     ["--train.optimizer=rmsprop", "--train.lr=3e-3", "--train.schedule=cosine"]),
    ("adagrad", "optimizer", "AdaGrad, lr 0.05, cosine schedule",
     ["--train.optimizer=adagrad", "--train.lr=0.05", "--train.schedule=cosine"]),
    ("init-torch", "initialisation",
     "torch's default U(±1/√H) instead of Xavier/orthogonal/forget bias 1",
     ["--model.init=torch"]),
    ("softsign", "activation", "softsign instead of tanh (cell and output)",
     ["--model.activation=softsign"]),
    ("l2", "L2", "L2 1e-4 on input and recurrent kernels",
     ["--train.kernel_l2=1e-4", "--train.recurrent_l2=1e-4"]),
    ("layers2", "stacking", "2 stacked LSTM(128)", ["--model.num_layers=2"]),
    ("h64", "size", "LSTM(64)", ["--model.hidden_size=64"]),
    ("h256", "size", "LSTM(256)", ["--model.hidden_size=256"]),
    ("limit10k", "more data", "first 10k training images only (9k train after holdout)",
     ["--data.limit=10000"]),
    # controls: what do more epochs / equal updates change
    ("baseline-8ep", "many epochs", "reference, 8 epochs", ["--train.epochs=8"]),
    ("limit10k-24ep", "more data", "first 10k images, 24 epochs (≈ the reference's 1,688 "
     "updates); the reference of the 10k rows below",
     ["--data.limit=10000", "--train.epochs=24"]),
    # where overfitting shows: 10k images, 24 epochs (the 4-epoch 60k rows barely overfit)
    ("10k-h64", "size (10k, 24 ep)", "LSTM(64)",
     ["--data.limit=10000", "--train.epochs=24", "--model.hidden_size=64"]),
    ("10k-h256", "size (10k, 24 ep)", "LSTM(256)",
     ["--data.limit=10000", "--train.epochs=24", "--model.hidden_size=256"]),
    ("10k-layers2", "stacking (10k, 24 ep)", "2 stacked LSTM(128)",
     ["--data.limit=10000", "--train.epochs=24", "--model.num_layers=2"]),
    ("10k-l2", "L2 (10k, 24 ep)", "L2 1e-4 on input and recurrent kernels",
     ["--data.limit=10000", "--train.epochs=24", "--train.kernel_l2=1e-4",
      "--train.recurrent_l2=1e-4"]),
    ("10k-l2x10", "L2 (10k, 24 ep)", "L2 1e-3 on input and recurrent kernels",
     ["--data.limit=10000", "--train.epochs=24", "--train.kernel_l2=1e-3",
      "--train.recurrent_l2=1e-3"]),
]  # fmt: skip


# each row's Δ is against the reference run; the 10k/24-epoch rows against their own reference
REFERENCE = {n: "limit10k-24ep" for n, _, _, _ in ROWS if n.startswith("10k-")}

# rows repeated with --train.seed=1 (run folder NAME-seed1) to size the seed-to-seed noise
SEED1 = ["baseline", "init-torch", "softsign", "l2", "layers2", "adagrad", "h64", "h256"]


def all_runs() -> list[tuple[str, list[str]]]:
    """(run name, overrides) of every run the table reads: the rows, then the seed-1 repeats."""
    runs = [(n, o) for n, _, _, o in ROWS]
    return runs + [(f"{n}-seed1", [*o, "--train.seed=1"]) for n, o in runs if n in SEED1]


def flags(overrides: list[str]) -> list[str]:
    """The row's overrides, with ``--train.epochs=EPOCHS`` unless the row sets its own."""
    own = any(o.startswith("--train.epochs=") for o in overrides)
    return overrides if own else [*overrides, f"--train.epochs={EPOCHS}"]


def command(overrides: list[str]) -> str:
    """The row's command as a reader types it from the repository root."""
    flags_ = " ".join(flags(overrides))
    return f"rnnlab train lstm-rows {flags_} --data-dir ../shared/datasets"


def finished(run: Path) -> bool:
    return any("test_accuracy" in r for r in records(run))


def records(run: Path) -> list[dict]:
    path = run / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def train_one(name: str, overrides: list[str], args) -> int:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "rnnlab", "train", "lstm-rows", "--data-dir", args.data_dir,
           f"--run.out_dir={args.out}", f"--run.name={name}", "--no-progress",
           *flags(overrides)]  # fmt: skip
    with open(Path(args.out) / f"{name}.log", "w") as log:
        return subprocess.call(["nice", "-n", "5", *cmd], stdout=log, stderr=log, env=env)


def train_eval(run: Path, data_dir: str) -> dict[str, float]:
    """Accuracy of the run's last checkpoint on its own training split, in eval mode (no
    dropout) -- the fair 'train' side of the overfitting gap. Cached in the run folder."""
    cache = run / "train_eval.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    import torch

    from rnnlab.training.experiment import _steps_for, build_data, load_run
    from rnnlab.training.loop import Batches, evaluate

    torch.set_num_threads(1)
    cfg, model = load_run(run)
    cfg.data.data_dir = data_dir
    data = build_data(cfg)
    batches = Batches(*data.train, batch_size=cfg.train.eval_batch_size, shuffle=False)
    out = {f"train_eval_{k}": v for k, v in evaluate(model, _steps_for(cfg)[1], batches).items()}
    out["n_train"] = len(data.train[0])
    cache.write_text(json.dumps(out, indent=2) + "\n")
    return out


def measure(args) -> dict[str, dict]:
    """Each finished run's numbers, by run name."""
    out = {}
    for name, _ in all_runs():
        run = Path(args.out) / name
        if not finished(run):
            continue
        recs = records(run)
        epochs = [r for r in recs if "train_accuracy" in r]
        test = next(r for r in recs if "test_accuracy" in r)["test_accuracy"]
        tr = train_eval(run, args.data_dir)["train_eval_accuracy"]
        out[name] = {
            "epochs": len(epochs),
            "test": test,
            "train_eval": tr,
            "gap": tr - test,
            "train_last": epochs[-1]["train_accuracy"],
            "val": epochs[-1].get("val_accuracy", float("nan")),
        }
    return out


def mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def table(args) -> str:
    """The Markdown table: test accuracy per seed (seed 0 / seed 1 where repeated); the
    difference from the reference and the gap are means over the seeds run."""
    m = measure(args)
    seeds = {n: [m[k] for k in (n, f"{n}-seed1") if k in m] for n, _, _, _ in ROWS}
    tests = {n: mean([r["test"] for r in rs]) for n, rs in seeds.items() if rs}
    if args.readme:
        head = ("| advice | change from `lstm-rows` | epochs | test acc (seed 0 / 1) "
                "| Δ vs ref. | train − test gap | command |\n"
                "|---|---|---|---|---|---|---|\n")  # fmt: skip
    else:
        head = ("| advice | change from `lstm-rows` | epochs | test acc (seed 0 / 1) "
                "| Δ vs ref. | train acc, eval mode | gap (train − test) "
                "| last-epoch train acc, dropout on | val acc | command |\n"
                "|---|---|---|---|---|---|---|---|---|---|\n")  # fmt: skip
    lines = []
    for name, advice, change, overrides in ROWS:
        cmd = f"`{command(overrides)}`"
        rs = seeds[name]
        if not rs:
            blanks = "| |" if args.readme else "| | | | |"
            lines.append(f"| {advice} | {change} | — | not run | {blanks} {cmd} |")
            continue
        test = " / ".join(f"{r['test']:.4f}" for r in rs)
        t = mean([r["test"] for r in rs])
        ref = REFERENCE.get(name, "baseline")
        delta = "—" if ref not in tests or name == "baseline" else f"{t - tests[ref]:+.4f}"
        gap = mean([r["gap"] for r in rs])
        cells = [advice, change, str(rs[0]["epochs"]), test, delta]
        if args.readme:
            cells += [f"{gap:+.4f}"]
        else:
            cells += [f"{mean([r['train_eval'] for r in rs]):.4f}", f"{gap:+.4f}"]
            cells += [f"{mean([r['train_last'] for r in rs]):.4f}"]
            cells += [f"{mean([r['val'] for r in rs]):.4f}"]
        lines.append("| " + " | ".join([*cells, cmd]) + " |")
    return head + "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("what", choices=["run", "table", "commands"])
    p.add_argument("--data-dir", default="../shared/datasets")
    p.add_argument("--out", default="runs/chapter-advice")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--only", nargs="*", help="run names to train (default: all)")
    p.add_argument("--readme", action="store_true", help="table: the condensed README columns")
    args = p.parse_args()
    if args.what == "commands":
        print("\n".join(command(o) for _, o in all_runs()))
    elif args.what == "run":
        Path(args.out).mkdir(parents=True, exist_ok=True)
        todo = [(n, o) for n, o in all_runs() if (not args.only or n in args.only)]
        todo = [(n, o) for n, o in todo if not finished(Path(args.out) / n)]
        with ThreadPoolExecutor(args.jobs) as pool:
            for (name, _), rc in zip(
                todo, pool.map(lambda t: train_one(*t, args), todo), strict=True
            ):
                print(f"{name}: exit {rc}")
    else:
        print(table(args))


if __name__ == "__main__":
    main()
