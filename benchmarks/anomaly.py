"""Autoencoder anomaly detection, measured: the one-class protocol on images and an LSTM
autoencoder on rnnlab's generated sequence-anomaly task.

Part ``images`` (Ruff et al. 2018, Deep SVDD, ICML, the protocol of their Table 1): for each
class ``c`` a fresh convolutional autoencoder (Masci et al. 2011; ``ConvAutoencoder``) is trained
on the training images of class ``c`` only, the whole test set is scored by per-image
reconstruction MSE, and AUROC / PR-AUC are computed with the other nine classes as anomalies.
Anchor: One-Class Deep SVDD, MNIST mean AUROC 94.8 (full 60k training set; we use MNIST-10k,
about 1,000 training images per class; Fashion-MNIST uses its full 60k, 6,000 per class).

Part ``sequences`` (Malhotra et al. 2016; Srivastava et al. 2015): an ``LSTMAutoencoder`` trained
on normal series of :func:`rnnlab.data.anomalies.sequence_anomalies`, scored on a test set with
half anomalies; AUROC and PR-AUC per anomaly kind (that kind against the normal test series)
and for all kinds together. A validation threshold at 5% false-positive rate (normal
validation series) gives the detection rate per kind.

Run: ``.venv/bin/python benchmarks/anomaly.py --part images --dataset mnist`` (or
``fashion-mnist``) and ``--part sequences``. Prints settings, one row per class / kind and the
wall time. Single thread by default (``--threads``).
"""

from __future__ import annotations

import argparse
import time

import torch
from _args import add_data_dir

from rnnlab.data import load
from rnnlab.data.anomalies import ANOMALY_KINDS, sequence_anomalies
from rnnlab.evaluation.anomaly import (
    auroc,
    fit_threshold,
    one_class_protocol,
    pr_auc,
    reconstruction_scores,
)
from rnnlab.models.autoencoders import (
    ConvAutoencoder,
    DeepAutoencoder,
    LSTMAutoencoder,
    train_autoencoder,
)

DEEP_SVDD_MNIST = [98.0, 99.7, 91.7, 91.9, 94.9, 88.5, 98.3, 94.6, 93.9, 96.5]  # mean 94.8


def images(args) -> None:
    train = load(args.dataset, "train", root=args.data_dir)
    test = load(args.dataset, "test", root=args.data_dir)
    x, xt = train.images[:, None], test.images[:, None]
    channels = [int(c) for c in args.channels.split(",")]
    name = "MNIST-10k" if args.dataset == "mnist" else args.dataset
    print(f"data: {name} train {tuple(x.shape)}, test {tuple(xt.shape)}")

    hidden = [int(h) for h in args.hidden_sizes.split(",")]
    if args.model == "deep":
        x, xt = x.flatten(1), xt.flatten(1)

    def make_model(c: int):
        torch.manual_seed(args.seed + c)
        if args.model == "deep":
            return DeepAutoencoder([784, *hidden, args.latent], output_activation="sigmoid")
        return ConvAutoencoder((28, 28), args.latent, channels, output_activation="sigmoid")

    def train_fn(model, normal):
        # the same number of optimizer steps per class whatever the class size
        epochs = max(1, round(args.steps * args.batch_size / len(normal)))
        train_autoencoder(model, normal, epochs, args.batch_size, args.lr, seed=args.seed)

    classes = [int(c) for c in args.classes.split(",")] if args.classes else None
    t0 = time.time()
    result = one_class_protocol(make_model, train_fn, x, train.labels, xt, test.labels, classes)
    print(f"{'class':>5} {'name':>12} {'n_train':>7} {'AUROC':>7} {'PR-AUC':>7} {'DSVDD':>6} "
          f"{'secs':>6}")  # fmt: skip
    for c, r in result["per_class"].items():
        anchor = f"{DEEP_SVDD_MNIST[c]:.1f}" if args.dataset == "mnist" else "-"
        print(
            f"{c:>5} {train.class_names[c][:12]:>12} {r['n_train']:>7} {100 * r['auroc']:>7.1f} "
            f"{100 * r['pr_auc']:>7.1f} {anchor:>6} {r['seconds']:>6.1f}"
        )
    mean_a, mean_p = 100 * result["mean_auroc"], 100 * result["mean_pr_auc"]
    print(f"mean AUROC {mean_a:.1f}, mean PR-AUC {mean_p:.1f} (PR-AUC chance ~ 90: anomalies "
          f"are ~90% of the test set); {time.time() - t0:.0f} s")  # fmt: skip


def sequences(args) -> None:
    kw = {"steps": args.seq_len, "seed": args.seed}
    x_train, _, _ = sequence_anomalies(args.n_train, anomaly_fraction=0.0, **kw)
    x_val, _, _ = sequence_anomalies(
        args.n_val, anomaly_fraction=0.0, **{**kw, "seed": args.seed + 1}
    )
    x_test, kind, _ = sequence_anomalies(
        args.n_test, anomaly_fraction=0.5, **{**kw, "seed": args.seed + 2}
    )
    print(f"data: train {tuple(x_train.shape)} normal, val {tuple(x_val.shape)} normal, test "
          f"{tuple(x_test.shape)} ({int((kind > 0).sum())} anomalous)")  # fmt: skip
    torch.manual_seed(args.seed)
    model = LSTMAutoencoder(1, args.hidden, args.seq_latent)
    t0 = time.time()
    history = train_autoencoder(
        model, x_train, args.seq_epochs, args.batch_size, args.lr, seed=args.seed
    )
    print(f"trained {args.seq_epochs} epochs in {time.time() - t0:.0f} s, train MSE "
          f"{history[0]:.4f} -> {history[-1]:.4f}")  # fmt: skip
    threshold = fit_threshold(model, x_val, fpr=0.05)
    scores = reconstruction_scores(model, x_test)  # mean squared error over the steps
    peak = max_step_error(model, x_test)  # worst step: the score for short events (spikes)
    flagged = scores > threshold
    normal = kind == 0
    print(
        "AUROC / PR-AUC of each kind against the normal test series; scores: mean or max "
        "squared error over the steps; flagged: mean-error score above the 5%-FPR threshold"
    )
    print(f"{'kind':>12} {'n':>5} {'AUROC':>7} {'PR-AUC':>7} {'AUROCmax':>9} {'PRAUCmax':>9} "
          f"{'flagged':>8}")  # fmt: skip
    for k, name in enumerate(("all", *ANOMALY_KINDS)):
        rows = ~normal if k == 0 else kind == k
        keep = normal | rows
        cells = [100 * f(s[keep], rows[keep]) for s in (scores, peak) for f in (auroc, pr_auc)]
        print(f"{name:>12} {int(rows.sum()):>5} {cells[0]:>7.1f} {cells[1]:>7.1f} {cells[2]:>9.1f} "
              f"{cells[3]:>9.1f} {100 * flagged[rows].float().mean():>7.1f}%")  # fmt: skip
    print(
        f"normal series flagged: {100 * flagged[normal].float().mean():.1f}% "
        f"(threshold from validation normals); total {time.time() - t0:.0f} s"
    )


@torch.no_grad()
def max_step_error(model: LSTMAutoencoder, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    return (model(x) - x).pow(2).sum(dim=2).amax(dim=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("images", "sequences"), default="images")
    add_data_dir(ap)
    ap.add_argument("--dataset", default="mnist", choices=("mnist", "fashion-mnist"))
    ap.add_argument("--classes", default="", help="comma list; default all ten")
    ap.add_argument("--model", choices=("deep", "conv"), default="deep")
    ap.add_argument("--hidden-sizes", default="256", help="deep AE: hidden widths")
    ap.add_argument("--latent", type=int, default=32)
    ap.add_argument("--channels", default="16,32")
    ap.add_argument("--steps", type=int, default=1600, help="optimizer steps per class")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seq-len", type=int, default=64)
    ap.add_argument("--n-train", type=int, default=2000)
    ap.add_argument("--n-val", type=int, default=500)
    ap.add_argument("--n-test", type=int, default=2000)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--seq-latent", type=int, default=16)
    ap.add_argument("--seq-epochs", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print("settings:", vars(args))
    images(args) if args.part == "images" else sequences(args)


if __name__ == "__main__":
    main()
