"""``rnnlab sample RUN --n 64 --out grid.png [--label L] [--seed S] [--nrow K]``.

Draws ``n`` samples from a trained VAE, GAN (MLP / DCGAN, conditional or not) or VAE-GAN run
folder and writes them as one PNG grid. VAE samples are the decoder's mean images of prior
draws z ~ N(0, I); GAN and VAE-GAN samples are G(z) mapped from [-1, 1] to [0, 1]. For a
conditional GAN, ``--label L`` draws every sample of class ``L``; without it the grid's rows
count through the classes (0, 1, ..., 9, 0, ...). The same ``--seed`` gives the same grid.
The sampling itself is :func:`rnnlab.evaluation.generative_report.generate`.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["sample_main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage block, like the rest of the CLI
        raise ValueError(message)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _parser() -> _Parser:
    p = _Parser(prog="rnnlab sample", description="Write a grid of samples from a run.")
    p.add_argument("run", help="a run folder of the vae, gan or vaegan family")
    p.add_argument("--n", type=_positive, default=64, help="how many samples (default 64)")
    p.add_argument("--out", default="samples.png", help="PNG to write (default samples.png)")
    p.add_argument("--label", type=int, default=None, help="class of every sample (cGAN only)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    p.add_argument("--nrow", type=_positive, default=None, help="images per row (default 8, "
                   "or the number of classes for a cGAN)")  # fmt: skip
    p.add_argument("--checkpoint", default="last", choices=("last", "best"))
    return p


def sample_main(argv: list[str] | None = None) -> int:
    """Run ``rnnlab sample``; returns 0, or 2 after one ``rnnlab: error: ...`` line."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = _parser().parse_args(argv)
        path = _sample(args)
    except (ValueError, OSError) as e:
        print(f"rnnlab: error: {str(e).splitlines()[0] if str(e) else type(e).__name__}",
              file=sys.stderr)  # fmt: skip
        return 2
    print(f"wrote {args.n} samples to {path}")
    return 0


def _sample(args) -> str:
    import torch

    from rnnlab.evaluation.generative_report import family_of, generate
    from rnnlab.training.experiment import load_run
    from rnnlab.utils import save_image_grid

    with torch.random.fork_rng(devices=[]):  # building the model draws initial weights
        cfg, model = load_run(args.run, args.checkpoint)
    if cfg.model.family not in ("vae", "gan", "vaegan"):
        raise ValueError(f"RUN {args.run} is a {cfg.model.family} run; sample takes vae, gan "
                         "or vaegan runs")  # fmt: skip
    family_of(model)
    n_classes = getattr(model, "n_classes", 0)
    labels = None
    if args.label is not None:
        if not n_classes:
            raise ValueError(f"--label needs a conditional GAN; RUN {args.run} is unconditional")
        if not 0 <= args.label < n_classes:
            raise ValueError(f"--label must be in 0..{n_classes - 1}; got {args.label}")
        labels = torch.full((args.n,), args.label, dtype=torch.long)
    images = generate(model, args.n, labels=labels, seed=args.seed)
    nrow = args.nrow or (n_classes if n_classes and labels is None else 8)
    return save_image_grid(images, args.out, nrow=nrow, value_range=(0.0, 1.0))
