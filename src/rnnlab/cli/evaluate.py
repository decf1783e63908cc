"""``rnnlab evaluate RUN``: the test metrics of a run folder's last checkpoint; for a
generative run also FID*/KID*, mode coverage and the binarized test NLL (features of
rnnlab's own domain classifier, not Inception)."""

from __future__ import annotations

from .common import open_run, positive

HELP = "test metrics of a run folder"
SHARED = ("data_dir",)
OVERRIDES = False
GENERATIVE_KEYS = (
    "fid", "kid", "classes_covered", "kl_to_uniform", "label_accuracy",
    "memorisation_median_ratio", "test_nll_binarized",
)  # fmt: skip


def add_arguments(p) -> None:
    p.add_argument("run", help="a run folder")
    p.add_argument("--n", type=positive, default=10_000, help="samples scored (VAE/GAN runs)")
    p.add_argument("--iw-k", type=positive, default=1000, help="importance samples for VAE NLL")


def run(args) -> int:
    from rnnlab.training import experiment, families

    data_dir = getattr(args, "data_dir", None)
    cfg, _ = open_run(args.run)  # a tampered run folder fails here, in one line
    metrics = experiment.evaluate_run(args.run, data_dir=data_dir)
    for key, value in metrics.items():
        print(f"{key}: {value:.4f}")
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
