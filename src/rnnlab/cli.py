"""``rnnlab <verb>``: the command line.

    rnnlab presets                              list the shipped presets
    rnnlab train PRESET [--section.key=value ...] [--dry-run] [--resume RUN]
    rnnlab evaluate RUN                         test metrics of a run folder
    rnnlab predict RUN INPUT                    classes for images in an .npy or IDX file
    rnnlab summary PRESET [--key=value ...]     Keras-format model table
    rnnlab datasets [download NAME]             where each dataset is / fetch one
    rnnlab attack RUN [--method fgsm|bim|pgd] [--eps E | --eps-list E,E,..] [--steps N]
                  [--restarts N] [--alpha A] [--limit N]
                                                robust accuracy -> RUN/robustness.json, figure
    rnnlab gradients RUN|PRESET [--layer L] [--batch N] [--out DIR]
                                                ||dL/dh_t|| table -> gradients.json/.png
    rnnlab gates RUN [--index I] [--layer L]    gate heatmaps -> RUN/gates/
    rnnlab report RUN [RUN ...] [--out DIR] [--title T]   HTML + Markdown report
    rnnlab tune PRESET --space SPACE.toml --trials N ...  Optuna study (rnnlab.training.tune)
    rnnlab sample RUN --n 64 --out grid.png [--label L]    samples of a VAE/GAN/VAE-GAN run
    rnnlab tour                                 the guided tour (rnnlab.tour)

Global options (before or after the verb): ``--device auto|cpu|cuda``, ``--data-dir DIR``,
``--precision fp32|bf16|fp16`` (autocast; fp16 with loss scaling, CUDA only), ``--cuda-graph``
(capture the whole train step as one CUDA graph; one line says why when it cannot),
``--dry-run`` (3 steps per epoch on synthetic data of the right shape, in a temporary run
folder), ``--resume RUN``. Bad input prints one line ``rnnlab: error: ...`` to stderr and
exits with status 2; a run that stops on a non-finite loss exits with 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["main"]

VERBS = (
    "train", "evaluate", "predict", "summary", "datasets", "presets", "attack", "gradients",
    "gates", "report", "tune", "sample", "tour",
)  # fmt: skip


class UsageError(Exception):
    """Bad command-line input: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage block
        raise UsageError(f"{message} (see `rnnlab --help`)")


def _parser() -> _Parser:
    common = _Parser(add_help=False)
    common.add_argument("--device", choices=("auto", "cpu", "cuda"), default=argparse.SUPPRESS)
    common.add_argument("--data-dir", default=argparse.SUPPRESS, help="folder holding datasets")
    common.add_argument(
        "--precision", choices=("fp32", "bf16", "fp16"), default=argparse.SUPPRESS,
        help="autocast precision (same as --train.precision=...)",
    )  # fmt: skip
    common.add_argument(
        "--cuda-graph", action="store_true", default=argparse.SUPPRESS,
        help="capture the train step as one CUDA graph (same as --train.cuda_graph=true)",
    )  # fmt: skip
    common.add_argument("--dry-run", action="store_true", default=argparse.SUPPRESS)
    common.add_argument("--resume", metavar="RUN", default=argparse.SUPPRESS)
    common.add_argument("--no-progress", action="store_true", default=argparse.SUPPRESS)
    common.add_argument(
        "--tensorboard", action="store_true", default=argparse.SUPPRESS,
        help="also write TensorBoard scalars (same as --run.tensorboard=true)",
    )  # fmt: skip
    parser = _Parser(
        prog="rnnlab",
        description="Train, evaluate and inspect the chapter's recurrent models.",
        epilog=__doc__.split("\n\n", 1)[1].replace("``", "`"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    p = verbs.add_parser("train", parents=[common], help="train a preset")
    p.add_argument("preset", nargs="?")
    p = verbs.add_parser("evaluate", parents=[common], help="test a run")
    p.add_argument("run")
    p.add_argument("--n", type=_positive, default=10_000, help="samples scored (VAE/GAN runs)")
    p.add_argument("--iw-k", type=int, default=1000, help="importance samples for VAE NLL")
    p = verbs.add_parser("predict", parents=[common], help="classify images with a run")
    p.add_argument("run")
    p.add_argument("input", help=".npy (N, H, W) or IDX images file")
    p = verbs.add_parser("summary", parents=[common], help="model table of a preset")
    p.add_argument("preset")
    p = verbs.add_parser("datasets", parents=[common], help="list or download datasets")
    p.add_argument("action", nargs="?", choices=("download",))
    p.add_argument("name", nargs="?")
    verbs.add_parser("presets", parents=[common], help="list presets")
    p = verbs.add_parser("attack", parents=[common], help="attack a run's test split")
    p.add_argument("run")
    p.add_argument("--method", choices=("fgsm", "bim", "pgd"), default="pgd")
    p.add_argument("--eps", type=_non_negative, default=0.3)
    p.add_argument("--eps-list", type=_eps_list, default=None, metavar="E,E,...")
    p.add_argument("--steps", type=_positive, default=40)
    p.add_argument("--restarts", type=_positive, default=1)
    p.add_argument("--alpha", type=_non_negative, default=None)
    p.add_argument("--limit", type=_positive, default=None, help="first N test examples")
    p.add_argument("--batch-size", type=_positive, default=256)
    p = verbs.add_parser("gradients", parents=[common], help="||dL/dh_t|| of a run or preset")
    p.add_argument("target", metavar="RUN|PRESET")
    p.add_argument("--layer", type=int, default=0)
    p.add_argument("--batch", type=_positive, default=64)
    p.add_argument("--out", default=None, help="folder for a preset's gradients.json/.png")
    p = verbs.add_parser("gates", parents=[common], help="gate heatmaps of a run")
    p.add_argument("run")
    p.add_argument("--index", type=int, default=0)
    p.add_argument("--layer", type=int, default=0)
    verbs.add_parser("report", help="HTML + Markdown report of runs", add_help=False)
    verbs.add_parser("tune", help="Optuna study over a preset", add_help=False)
    verbs.add_parser("sample", help="image grid from a generative run", add_help=False)
    verbs.add_parser("tour", parents=[common], help="guided tour", add_help=False)
    return parser


def _number(text: str, kind, test, expected: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if not test(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def _positive(text: str) -> int:
    return _number(text, int, lambda v: v >= 1, "an integer >= 1")


def _non_negative(text: str) -> float:
    return _number(text, float, lambda v: v >= 0 and v != float("inf"), "a number >= 0")


def _eps_list(text: str) -> list[float]:
    return [_non_negative(part) for part in text.split(",") if part.strip()] or _non_negative("")


def _one_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 1 training stopped, 2 bad input)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["tour"]:
        return _tour(argv[1:])
    if argv[:1] == ["report"]:
        from rnnlab.evaluation.report import report_main

        return report_main(argv[1:])
    if argv[:1] == ["tune"]:
        return _tune(argv[1:])
    if argv[:1] == ["sample"]:
        from rnnlab.sampling import sample_main

        return sample_main(argv[1:])
    from rnnlab.data import DatasetNotFoundError, DownloadError, IDXError
    from rnnlab.training.checkpoint import CheckpointError
    from rnnlab.training.config import ConfigError
    from rnnlab.training.experiment import DataError
    from rnnlab.training.loop import TrainingStopped

    try:
        args, rest = _parser().parse_known_args(argv)
        overrides = [a for a in rest if a.startswith("--") and "=" in a]
        stray = [a for a in rest if a not in overrides]
        if stray or (overrides and args.verb not in ("train", "summary", "gradients")):
            raise UsageError(f"unrecognized arguments: {' '.join(stray or overrides)}")
        if args.verb is None:
            raise UsageError("a VERB is required: " + ", ".join(VERBS))
        return _dispatch(args, overrides, argv)
    except TrainingStopped as e:
        print(f"rnnlab: error: {_one_line(e)}", file=sys.stderr)
        return 1
    except (UsageError, ConfigError, DataError, DatasetNotFoundError, DownloadError,
            ImportError) as e:  # fmt: skip
        print(f"rnnlab: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except (IDXError, CheckpointError, ValueError, OSError) as e:
        print(f"rnnlab: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rnnlab: interrupted", file=sys.stderr)
        return 130


def _config(args, overrides: list[str]):
    from rnnlab.training.checkpoint import RunDir
    from rnnlab.training.config import apply_overrides, config_from_dict, load_preset

    resume = getattr(args, "resume", None)
    if resume is not None:
        cfg = config_from_dict(RunDir.open(resume).config()["config"])
    elif getattr(args, "preset", None):
        cfg = load_preset(args.preset)
    else:
        raise UsageError("train needs a PRESET (see `rnnlab presets`) or --resume RUN")
    flags = list(overrides)
    if hasattr(args, "device"):
        flags.append(f"--train.device={args.device}")
    if hasattr(args, "data_dir"):
        flags.append(f"--data.data_dir={args.data_dir}")
    if getattr(args, "tensorboard", False):
        flags.append("--run.tensorboard=true")
    if hasattr(args, "precision"):
        flags.append(f"--train.precision={args.precision}")
    if getattr(args, "cuda_graph", False):
        flags.append("--train.cuda_graph=true")
    return apply_overrides(cfg, flags)


def _dispatch(args, overrides: list[str], argv: list[str]) -> int:
    from rnnlab.training import experiment

    if args.verb == "presets":
        from rnnlab.training.config import list_presets

        presets = list_presets()
        width = max(map(len, presets))
        for name, description in presets.items():
            print(f"{name:<{width}}  {description}")
        return 0
    if args.verb == "datasets":
        return _datasets(args)
    if args.verb == "train":
        cfg = _config(args, overrides)
        result = experiment.train(
            cfg, argv=["rnnlab", *argv], dry_run=getattr(args, "dry_run", False),
            resume_from=getattr(args, "resume", None),
            progress=not getattr(args, "no_progress", False) and sys.stderr.isatty(),
        )  # fmt: skip
        print(f"run: {result['run'] or '(dry run, not kept)'}")
        return 0
    if args.verb == "summary":
        from rnnlab.layers import summary

        cfg = _config(args, overrides)
        data = experiment.build_data(cfg, dry_run=True)
        model = experiment.build_model(cfg, data.train[0][0], max(data.num_classes, 0))
        if cfg.model.family == "vaegan":  # three parts, no single forward to trace
            for part, params in model.parts().items():
                print(f"{part:<14} {sum(p.numel() for p in params):>12,} parameters")
            return 0
        shape = tuple(data.train[0].shape[1:])
        if cfg.model.family == "gan":  # the container's forward is the generator's: z -> x
            shape = (cfg.model.latent_dim,)
        summary(model, shape, name=cfg.run.preset)
        return 0
    if args.verb == "evaluate":
        data_dir = getattr(args, "data_dir", None)
        metrics = experiment.evaluate_run(args.run, data_dir=data_dir)
        for key, value in metrics.items():
            print(f"{key}: {value:.4f}")
        family = experiment.load_run(args.run)[0].model.family
        if family in ("vae", "gan", "vaegan"):  # sample quality, offline (issue 5)
            from rnnlab.evaluation.generative_report import evaluate_generator

            out = evaluate_generator(args.run, n=args.n, iw_k=args.iw_k, data_dir=data_dir)
            print("FID*/KID* on rnnlab's own domain-classifier features (not Inception):")
            for key in ("fid", "kid", "classes_covered", "kl_to_uniform", "label_accuracy",
                        "memorisation_median_ratio", "test_nll_binarized"):  # fmt: skip
                if key in out:
                    print(f"{key}: {out[key]:.4f}")
        return 0
    if args.verb == "predict":
        return _predict(args.run, args.input)
    if args.verb in ("attack", "gradients", "gates"):
        return _inspect(args, overrides)
    raise UsageError(f"unknown VERB {args.verb!r}")


def _datasets(args) -> int:
    from rnnlab.data import describe, download

    root = getattr(args, "data_dir", None)
    if args.action == "download":
        if not args.name:
            raise UsageError(
                "`datasets download` needs a NAME, e.g. `rnnlab datasets download mnist`"
            )
        print(f"{args.name}: {download(args.name, root)}")
        return 0
    for row in describe(root):
        sizes = ", ".join(f"{k} {v if v is not None else '-'}" for k, v in row["splits"].items())
        where = row["location"] or f"missing: {row['how_to_get']}"
        if "error" in row:
            where += f" (error: {row['error']})"
        print(f"{row['name']:<14} {row['classes']:>3} classes  {sizes:<24} {where}")
    return 0


def _read_images(path: Path):
    import numpy as np
    import torch

    from rnnlab.data import read_idx

    if not path.is_file():
        raise UsageError(f"INPUT {path} does not exist")
    if path.suffix == ".npy":
        array = np.load(path, allow_pickle=False)
    else:
        array = read_idx(path)
    if array.ndim == 2:
        array = array[None]
    if array.ndim == 4 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 3:
        raise UsageError(f"INPUT {path}: expected images (N, H, W), got shape {array.shape}")
    images = torch.from_numpy(array.astype(np.float32))
    if array.dtype == np.uint8:
        images /= 255.0
    if not torch.isfinite(images).all():
        raise UsageError(f"INPUT {path}: images hold NaN or inf")
    return images


def _predict(run: str, input_path: str) -> int:
    import torch

    from rnnlab.data import DATASETS
    from rnnlab.training import experiment

    cfg, model = experiment.load_run(run)
    images = _read_images(Path(input_path))
    if cfg.model.family != "classify":
        raise UsageError(f"RUN {run} is a {cfg.model.family} run; predict takes image classifiers")
    spec = DATASETS[cfg.data.dataset]
    if tuple(images.shape[1:]) != spec.image_shape:
        raise UsageError(
            f"INPUT {input_path}: the run expects {spec.image_shape} images, "
            f"got {tuple(images.shape[1:])}"
        )
    with torch.no_grad():
        classes = model(experiment.model_input(cfg, images)).argmax(-1).tolist()
    for i, c in enumerate(classes):
        print(f"{i}\t{c}\t{spec.class_names[c]}")
    return 0


def _inspect(args, overrides: list[str]) -> int:
    from rnnlab.training import inspect_run

    dry_run = getattr(args, "dry_run", False)
    if args.verb == "attack":
        device = getattr(args, "device", "cpu")
        inspect_run.attack_run(
            args.run, method=args.method, eps=args.eps, eps_list=args.eps_list,
            steps=args.steps, restarts=args.restarts, alpha=args.alpha, limit=args.limit or 0,
            batch_size=args.batch_size, device="cpu" if device == "auto" else device,
            dry_run=dry_run,
        )  # fmt: skip
        return 0
    if args.verb == "gates":
        inspect_run.gates_run(args.run, index=args.index, layer=args.layer, dry_run=dry_run)
        return 0
    from rnnlab.training import experiment
    from rnnlab.utils import seed_everything

    target = Path(args.target)
    if (target / "config.json").is_file():
        if overrides:
            raise UsageError(f"overrides apply to a PRESET, not to RUN {target}: {overrides[0]}")
        cfg, model = experiment.load_run(target)
        name, out = target.name, target
    else:
        args.preset = args.target
        cfg = _config(args, overrides)
        seed_everything(cfg.train.seed)
        data = experiment.build_data(cfg, dry_run=True)
        model = experiment.build_model(cfg, data.train[0][0], max(data.num_classes, 0))
        name, out = f"{cfg.run.preset} (untrained)", args.out
    if args.out is not None:
        out = args.out
    inspect_run.gradients_run(
        cfg, model, name, out=out, batch=args.batch, layer=args.layer, dry_run=dry_run
    )
    return 0


def _tune(argv: list[str]) -> int:
    try:
        from rnnlab.training.tune import tune_main
    except ImportError as e:
        print(f"rnnlab: error: `rnnlab tune` is not available ({e})", file=sys.stderr)
        return 2
    return tune_main(argv)


def _tour(argv: list[str]) -> int:
    try:
        from rnnlab.tour import main as tour_main
    except ImportError as e:
        print(f"rnnlab: error: the tour is not available ({e})", file=sys.stderr)
        return 2
    return tour_main(argv)


if __name__ == "__main__":
    sys.exit(main())
