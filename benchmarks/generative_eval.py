"""Score trained generative run folders and print the Markdown table of docs/results/generative.md.

For every RUN it calls :func:`rnnlab.evaluation.generative_report.evaluate_generator` (FID,
KID, mode coverage, memorisation on ``--n`` samples; binarized test NLL with ``--iw-k``
importance samples for VAEs), keeps the result in ``RUN/generative_eval.json`` (a RUN that has
one is not scored again unless ``--force``), and with ``--grids DIR`` writes a 64-sample grid
``DIR/gen_<run name>.png`` (cGAN: each row counts 0..9). FID/KID are computed on rnnlab's own
domain-classifier features, not Inception: not comparable with published FIDs.

Run: ``python benchmarks/generative_eval.py RUN [RUN ...] [--n 10000] [--iw-k 1000]
[--grids docs/results] [--data-dir ../shared/datasets]``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from rnnlab.evaluation.generative_report import evaluate_generator, generate
from rnnlab.evaluation.images import save_image_grid
from rnnlab.training.experiment import load_run


def _budget(run: Path) -> tuple[str, float, dict]:
    cfg = json.loads((run / "config.json").read_text())
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in records if "seconds" in r]
    steps = epochs[-1]["step"] if epochs else 0
    seconds = sum(r["seconds"] for r in epochs)
    return f"{len(epochs)} ep / {steps} steps", seconds, cfg


def _row(name: str, r: dict, budget: str, seconds: float) -> str:
    nll = f"{r['test_nll_binarized']:.2f}" if "test_nll_binarized" in r else "-"
    kid = f"{r['kid']:.1f} ± {r['kid_std']:.1f}"
    return (f"| {name} | {budget} | {seconds / 60:.1f} | {r['fid']:.2f} | {kid} | "
            f"{r['classes_covered']}/10 | {r['kl_to_uniform']:.3f} | "
            f"{r['memorisation_median_ratio']:.2f} | {nll} |")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+")
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--iw-k", type=int, default=1000)
    p.add_argument("--grids", default=None, help="folder for gen_<run>.png sample grids")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--force", action="store_true")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--classifier-epochs", type=int, default=5, help="domain classifier epochs")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows, classifiers = [], {}
    for run in map(Path, args.runs):
        saved = run / "generative_eval.json"
        if saved.is_file() and not args.force:
            r = json.loads(saved.read_text())
        else:
            t0 = time.perf_counter()
            r = evaluate_generator(run, n=args.n, iw_k=args.iw_k, data_dir=args.data_dir,
                                   classifier_epochs=args.classifier_epochs)  # fmt: skip
            print(f"{run.name}: scored in {time.perf_counter() - t0:.0f} s", flush=True)
        budget, seconds, cfg = _budget(run)
        classifiers[r["dataset"]] = r["classifier"]
        rows.append(_row(run.name, r, budget, seconds))
        extra = f" label accuracy {r['label_accuracy']:.3f}" if "label_accuracy" in r else ""
        print(rows[-1], "histogram", r["histogram"], extra, flush=True)
        if args.grids:
            with torch.random.fork_rng(devices=[]):
                cfg, model = load_run(run)
            n_classes = getattr(model, "n_classes", 0)
            grid = Path(args.grids) / f"gen_{run.name}.png"
            images = generate(model, 64 if not n_classes else 80, family=cfg.model.family, seed=0)
            save_image_grid(images, grid, nrow=n_classes or 8, value_range=(0.0, 1.0))
    print("\n| run | training | train min | FID* | KID* | classes | KL to uniform | "
          "NN-dist ratio | test NLL (nats) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    for name, info in classifiers.items():
        print(f"\n{name}: domain classifier test accuracy {info['test_accuracy']:.4f}, "
              f"FID*(train vs test) {info['fid_train_test']:.2f} (n_train {info['n_train']}, "
              f"{info['epochs']} epochs)")  # fmt: skip


if __name__ == "__main__":
    main()
