"""``rnnlab evaluate RUN [--checkpoint last|best]``: the test metrics of a run folder's
final weights (those it ended with: the best epoch's under ``train.restore_best``, else the
last); for a classifier also the confusion matrix and per-class report, written into the
run folder; for a generative run also FID*/KID*, mode coverage and the binarized test NLL
(features of rnnlab's own domain classifier, not Inception).

``--checkpoint`` scores other weights of the run (``last`` or ``best``, e.g. the lowest
training loss of a run without validation data). It prints their test metrics only: the
files in the run folder always describe the run's final weights, so they are not rewritten.
"""

from __future__ import annotations

from .common import UsageError, open_run, positive

HELP = "test metrics of a run folder"
SHARED = ("data_dir", "checkpoint")
OVERRIDES = False
GENERATIVE_KEYS = (
    "fid", "kid", "classes_covered", "kl_to_uniform", "label_accuracy",
    "memorisation_median_ratio", "test_nll_binarized",
)  # fmt: skip


def add_arguments(p) -> None:
    p.add_argument("run", help="a run folder")
    p.add_argument("--n", type=positive, default=10_000, help="samples scored (VAE/GAN runs)")
    p.add_argument("--iw-k", type=positive, default=1000, help="importance samples for VAE NLL")
    p.add_argument("--metric", default=None, help="print only this test metric (e.g. bpc, "
                   "perplexity, accuracy)")  # fmt: skip


def _check_metric(metric: str, metrics: dict, cfg) -> None:
    """A metric the run does not report: one line saying which it does (and, for bits per
    character asked of a word-level language model, why)."""
    if f"test_{metric}" in metrics:
        return
    known = ", ".join(k.removeprefix("test_") for k in metrics)
    if metric == "bpc" and "test_perplexity" in metrics:
        raise UsageError(f"--metric bpc: bits per character apply to character-level runs; "
                         f"RUN is a word-level language model (it reports {known})")  # fmt: skip
    raise UsageError(f"--metric {metric}: RUN reports {known}")


def run(args) -> int:
    from rnnlab.training import experiment, families

    data_dir = getattr(args, "data_dir", None)
    checkpoint = getattr(args, "checkpoint", None)
    cfg, _ = open_run(args.run, checkpoint)  # a tampered run folder fails here, in one line
    metrics = experiment.evaluate_run(args.run, data_dir=data_dir, checkpoint=checkpoint)
    if args.metric is not None:
        _check_metric(args.metric, metrics, cfg)
        metrics = {f"test_{args.metric}": metrics[f"test_{args.metric}"]}
    for key, value in metrics.items():
        print(f"{key}: {value:.4f}")
    if checkpoint is not None:
        print(
            f"(checkpoint {checkpoint}.pt; the run folder's files describe its final weights "
            "and were left as they are)"
        )
        return 0
    from .outputs import write_classifier_outputs

    write_classifier_outputs(args.run, data_dir=data_dir)  # classifiers only
    if "generation" in families.get(cfg.model.family).supports:  # sample quality, offline
        from rnnlab.evaluation.generative_report import evaluate_generator

        out = evaluate_generator(args.run, n=args.n, iw_k=args.iw_k, data_dir=data_dir,
                                 progress=True)  # fmt: skip
        print("FID*/KID* on rnnlab's own domain-classifier features (not Inception):")
        for key in GENERATIVE_KEYS:
            if key in out:
                print(f"{key}: {out[key]:.4f}")
    return 0
