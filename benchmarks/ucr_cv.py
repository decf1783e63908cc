"""UCR/UEA classification with the recipe chosen by stratified k-fold cross-validation on the
training file only (issue 17; :mod:`rnnlab.training.crossval`).

    python benchmarks/ucr_cv.py ECG200 --candidates fcn resnet lstm --epochs 200

1. Cross-validation: each candidate recipe is trained ``--folds`` times (seed 0; stratified
   folds of the training file, dealt with seed 0), on all folds but one, for ``--epochs``
   epochs, and scored on the held-out fold after every epoch. A candidate's score is its
   highest pooled held-out accuracy after a ``--smooth``-epoch trailing average, the epoch
   where it lies is its number of epochs; the candidate with the best score is chosen (ties
   to :data:`~rnnlab.training.crossval.TIE_DIGITS` digits: the lower held-out loss there).
   The test file is not read in this step.
2. Refit: the chosen recipe is trained by ``rnnlab train seq-classify`` (in this process) on
   the whole training file for that many epochs, once per ``--seeds``, and scored on the
   test file; the equivalent command line is printed. Mean ± sd (n - 1) over the seeds.
   With ``--ensemble K``, the seeds are dealt in groups of K and each group is one ensemble
   (the mean of its members' test probabilities, :mod:`rnnlab.evaluation.ensemble`); the
   mean ± sd is then over the ensembles. K is fixed before any run (InceptionTime's is 5,
   Ismail Fawaz et al. 2020), not chosen on test, and the candidate is still chosen by the
   cross-validation of single networks.

Every result goes to ``--out`` (JSON, rewritten after each step; finished cross-validations
are read back from it, so a stopped run continues where it stopped).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

from rnnlab.data.files import read_sequences
from rnnlab.data.records import class_names, encode_labels
from rnnlab.training.config import apply_overrides, load_preset
from rnnlab.training.crossval import TIE_DIGITS, CVCurve, cross_validate, stratified_folds

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _args import add_data_dir  # noqa: E402

# Fawaz et al. (2019)'s recipe of the FCN and ResNet: Adam 1e-3, the lr halved after 50
# epochs without a lower training loss (down to 1e-4), batch 16, no clipping
FAWAZ = ["--train.lr=1e-3", "--data.batch_size=16", "--train.schedule=plateau",
         "--train.gamma=0.5", "--train.plateau_patience=50", "--train.min_lr=1e-4",
         "--train.clip_norm=none"]  # fmt: skip
# the seq-classify preset's recipe (Adam 3e-3, clip 1, batch 32, hidden 64) for the RNNs
CANDIDATES: dict[str, list[str]] = {
    "fcn": ["--model.kind=fcn", *FAWAZ],
    "resnet": ["--model.kind=resnet", *FAWAZ],
    "lstm": ["--model.kind=lstm"],
    "gru": ["--model.kind=gru"],
    # Wang et al. (2017)'s MLP with Fawaz et al.'s recipe: Adadelta lr 1 (Zeiler 2012), the
    # lr halved after 200 epochs without a lower training loss (down to 0.1), batch 16
    "mlp": ["--model.kind=mlp", "--train.optimizer=adadelta", "--train.lr=1.0",
            "--data.batch_size=16", "--train.schedule=plateau", "--train.gamma=0.5",
            "--train.plateau_patience=200", "--train.min_lr=0.1", "--train.clip_norm=none"],
    # one network of InceptionTime (Ismail Fawaz et al. 2020) with its recipe: Adam 1e-3,
    # batch 64, the lr halved after 50 epochs without a lower training loss (down to 1e-4)
    "inception": ["--model.kind=inception", "--train.lr=1e-3", "--data.batch_size=64",
                  "--train.schedule=plateau", "--train.gamma=0.5", "--train.plateau_patience=50",
                  "--train.min_lr=1e-4", "--train.clip_norm=none"],
    # Serrà et al. (2018)'s Encoder with Fawaz et al.'s recipe: Adam 1e-5, batch 12, 100 epochs
    "encoder": ["--model.kind=encoder", "--train.lr=1e-5", "--data.batch_size=12",
                "--train.clip_norm=none"],
}  # fmt: skip
# candidates cross-validated for their own number of epochs (Fawaz et al.'s), not --epochs:
# the MLP's Adadelta steps are small and it trains 5,000 (an epoch costs ~1% of a ResNet's)
OWN_EPOCHS = {"mlp": 5000, "encoder": 100}
WHOLE_FILE = ["--data.val_fraction=0", "--train.patience=0"]


def _files(data_dir: str, name: str) -> tuple[str, str]:
    folder = Path(data_dir) / "ucr" / name
    return str(folder / f"{name}_TRAIN.ts"), str(folder / f"{name}_TEST.ts")


def _config(name: str, train: str, test: str, epochs: int, seed: int, extra: list[str]):
    flags = [f"--data.train={train}", f"--data.test={test}", *CANDIDATES[name], *WHOLE_FILE,
             f"--train.epochs={epochs}", f"--train.seed={seed}", *extra]  # fmt: skip
    return apply_overrides(load_preset("seq-classify"), flags), flags


def _save(path: Path, results: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1))
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dataset", help="a folder of ucr/ in the data dir, e.g. ECG200")
    ap.add_argument("--candidates", nargs="+", default=["fcn", "resnet"], choices=CANDIDATES)
    ap.add_argument(
        "--epochs",
        type=int,
        default=300,
        help="epochs of every CV run (max; OWN_EPOCHS candidates have their own)",
    )
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--smooth", type=int, default=10, help="epochs of the trailing average")
    ap.add_argument("--seeds", default="0,1,2", help="seeds of the refit runs")
    ap.add_argument("--ensemble", type=int, default=1, help="refit seeds per ensemble (K)")
    ap.add_argument("--out", default=None, help="JSON results (default runs/ucr_cv-NAME.json)")
    ap.add_argument("--run-dir", default="runs", help="--run.out_dir of the refit runs")
    ap.add_argument("--cv-only", action="store_true", help="stop after the cross-validation")
    add_data_dir(ap)
    args = ap.parse_args(argv)
    seeds = args.seeds.split(",")
    if args.ensemble < 1 or len(seeds) % args.ensemble:
        ap.error(f"--seeds: expected a multiple of --ensemble={args.ensemble} seeds, got "
                 f"{len(seeds)}")  # fmt: skip
    torch.set_num_threads(1)
    train, test = _files(args.data_dir, args.dataset)
    out = Path(args.out or f"runs/ucr_cv-{args.dataset}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(out.read_text()) if out.is_file() else {}
    results.setdefault("cv", {})
    results |= {"dataset": args.dataset, "folds": args.folds, "smooth": args.smooth}

    seqs = read_sequences(train)
    classes = class_names(seqs.labels)
    y = encode_labels(seqs.labels, classes, seqs.source)
    folds = stratified_folds(y, args.folds, seed=0)
    print(f"{args.dataset}: {len(y)} training series, {len(classes)} classes, "
          f"folds of {[len(f) for f in folds]}")  # fmt: skip
    for name in args.candidates:
        done, planned = results["cv"].get(name), OWN_EPOCHS.get(name, args.epochs)
        if done and done["epochs_run"] == planned:
            curve = CVCurve(done["accuracy"], done["loss"])
        else:
            cfg, _ = _config(name, train, test, planned, 0, [])
            t0 = time.perf_counter()
            curve = cross_validate(cfg, seqs.x, y, seqs.lengths, len(classes), folds)
            results["cv"][name] = {"epochs_run": planned, "accuracy": curve.accuracy,
                                   "loss": curve.loss, "seconds": time.perf_counter() - t0,
                                   "flags": CANDIDATES[name]}  # fmt: skip
        e, acc, loss = curve.best(args.smooth)
        results["cv"][name] |= {"best_epochs": e, "best_accuracy": acc, "best_loss": loss}
        _save(out, results)
        print(f"cv {name}: held-out accuracy {acc:.4f} (loss {loss:.4f}) at {e} epochs; "
              f"at {planned}: {curve.accuracy[-1]:.4f}")  # fmt: skip
    cv = results["cv"]  # the best accuracy; ties: the lower held-out loss
    chosen = min(args.candidates, key=lambda n: (-round(cv[n]["best_accuracy"], TIE_DIGITS),
                                                 cv[n]["best_loss"]))  # fmt: skip
    epochs = results["cv"][chosen]["best_epochs"]
    results["chosen"] = {"candidate": chosen, "epochs": epochs}
    _save(out, results)
    print(f"chosen: {chosen}, {epochs} epochs")
    if args.cv_only:
        return 0

    from rnnlab.training.experiment import train as train_run

    refits = results.setdefault("refit", {})
    for seed in (int(s) for s in seeds):
        key = f"{chosen}-{epochs}-{seed}"
        if key not in refits:
            extra = [f"--run.out_dir={args.run_dir}", f"--run.name=ucr_cv-{args.dataset}-{key}"]
            cfg, flags = _config(chosen, train, test, epochs, seed, extra)
            r = train_run(cfg, argv=flags, log=lambda _: None, progress=False)
            refits[key] = {"test_accuracy": r["test_accuracy"], "run": r["run"],
                           "command": "rnnlab train seq-classify " + " ".join(flags)}  # fmt: skip
            _save(out, results)
        print(f"refit seed {seed}: test accuracy {refits[key]['test_accuracy']:.4f}")
        print(f"  {refits[key]['command']}")
    if args.ensemble == 1:
        accs = [refits[f"{chosen}-{epochs}-{s}"]["test_accuracy"] for s in seeds]
    else:
        from rnnlab.evaluation.ensemble import ensemble_accuracy

        groups = [seeds[i : i + args.ensemble] for i in range(0, len(seeds), args.ensemble)]
        accs = []
        for group in groups:
            runs = [refits[f"{chosen}-{epochs}-{s}"]["run"] for s in group]
            accs.append(ensemble_accuracy(runs, data_dir=args.data_dir)["test"]["ensemble"])
            print(f"ensemble of seeds {','.join(group)}: test accuracy {accs[-1]:.4f}")
    sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
    results["test"] = {"mean": statistics.mean(accs), "sd": sd, "seeds": args.seeds,
                       "ensemble": args.ensemble, "accuracies": accs}  # fmt: skip
    _save(out, results)
    kind = f"{chosen} × {args.ensemble}" if args.ensemble > 1 else chosen
    print(f"{args.dataset}: {kind} test accuracy {statistics.mean(accs):.4f} ± {sd:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
