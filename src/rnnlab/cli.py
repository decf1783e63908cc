"""``rnnlab <verb>``: the command line.

    rnnlab presets                              list the shipped presets
    rnnlab train PRESET [--section.key=value ...] [--dry-run] [--resume RUN]
    rnnlab evaluate RUN                         test metrics of a run folder
    rnnlab predict RUN INPUT                    classes for images in an .npy or IDX file
    rnnlab summary PRESET [--key=value ...]     Keras-format model table
    rnnlab datasets [download NAME]             where each dataset is / fetch one
    rnnlab tour                                 the guided tour (rnnlab.tour)

Global options (before or after the verb): ``--device auto|cpu|cuda``, ``--data-dir DIR``,
``--dry-run`` (3 steps per epoch on synthetic data of the right shape, in a temporary run
folder), ``--resume RUN``. Bad input prints one line ``rnnlab: error: ...`` to stderr and
exits with status 2; a run that stops on a non-finite loss exits with 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["main"]

VERBS = ("train", "evaluate", "predict", "summary", "datasets", "presets", "tour")


class UsageError(Exception):
    """Bad command-line input: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage block
        raise UsageError(f"{message} (see `rnnlab --help`)")


def _parser() -> _Parser:
    common = _Parser(add_help=False)
    common.add_argument("--device", choices=("auto", "cpu", "cuda"), default=argparse.SUPPRESS)
    common.add_argument("--data-dir", default=argparse.SUPPRESS, help="folder holding datasets")
    common.add_argument("--dry-run", action="store_true", default=argparse.SUPPRESS)
    common.add_argument("--resume", metavar="RUN", default=argparse.SUPPRESS)
    common.add_argument("--no-progress", action="store_true", default=argparse.SUPPRESS)
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
    verbs.add_parser("evaluate", parents=[common], help="test a run").add_argument("run")
    p = verbs.add_parser("predict", parents=[common], help="classify images with a run")
    p.add_argument("run")
    p.add_argument("input", help=".npy (N, H, W) or IDX images file")
    p = verbs.add_parser("summary", parents=[common], help="model table of a preset")
    p.add_argument("preset")
    p = verbs.add_parser("datasets", parents=[common], help="list or download datasets")
    p.add_argument("action", nargs="?", choices=("download",))
    p.add_argument("name", nargs="?")
    verbs.add_parser("presets", parents=[common], help="list presets")
    verbs.add_parser("tour", parents=[common], help="guided tour", add_help=False)
    return parser


def _one_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 1 training stopped, 2 bad input)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["tour"]:
        return _tour(argv[1:])
    from rnnlab.data import DatasetNotFoundError, DownloadError, IDXError
    from rnnlab.training.checkpoint import CheckpointError
    from rnnlab.training.config import ConfigError
    from rnnlab.training.experiment import DataError
    from rnnlab.training.loop import TrainingStopped

    try:
        args, rest = _parser().parse_known_args(argv)
        overrides = [a for a in rest if a.startswith("--") and "=" in a]
        stray = [a for a in rest if a not in overrides]
        if stray or (overrides and args.verb not in ("train", "summary")):
            raise UsageError(f"unrecognized arguments: {' '.join(stray or overrides)}")
        if args.verb is None:
            raise UsageError("a VERB is required: " + ", ".join(VERBS))
        return _dispatch(args, overrides, argv)
    except TrainingStopped as e:
        print(f"rnnlab: error: {_one_line(e)}", file=sys.stderr)
        return 1
    except (UsageError, ConfigError, DataError, DatasetNotFoundError, DownloadError) as e:
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
        summary(model, tuple(data.train[0].shape[1:]), name=cfg.run.preset)
        return 0
    if args.verb == "evaluate":
        metrics = experiment.evaluate_run(args.run, data_dir=getattr(args, "data_dir", None))
        for key, value in metrics.items():
            print(f"{key}: {value:.4f}")
        return 0
    if args.verb == "predict":
        return _predict(args.run, args.input)
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
    if cfg.data.dataset == "adding":
        raise UsageError(f"RUN {run} is a regression run; predict takes image classifiers")
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


def _tour(argv: list[str]) -> int:
    try:
        from rnnlab.tour import main as tour_main
    except ImportError as e:
        print(f"rnnlab: error: the tour is not available ({e})", file=sys.stderr)
        return 2
    return tour_main(argv)


if __name__ == "__main__":
    sys.exit(main())
