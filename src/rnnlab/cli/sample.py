"""``rnnlab sample RUN --n 64 --out grid.png [--label L] [--seed S] [--nrow K]``.

Draws ``n`` samples from a trained VAE, GAN (MLP / DCGAN, conditional or not) or VAE-GAN run
folder and writes them as one PNG grid. VAE samples are the decoder's mean images of prior
draws z ~ N(0, I); GAN and VAE-GAN samples are G(z) mapped from [-1, 1] to [0, 1]. For a
conditional GAN, ``--label L`` draws every sample of class ``L``; without it the grid's rows
count through the classes (0, 1, ..., 9, 0, ...). The same ``--seed`` gives the same grid.
The sampling itself is :func:`rnnlab.evaluation.generative_report.generate`. ``--n`` is
refused before anything is allocated when the images would not fit in memory.
"""

from __future__ import annotations

from .common import UsageError, open_run, positive, seed

HELP = "image grid from a generative run"
SHARED = ("checkpoint",)
OVERRIDES = False
MAX_BYTES = 2**31  # the float32 images of one grid, all held at once


def add_arguments(p) -> None:
    p.add_argument("run", help="a run folder of the vae, gan or vaegan family")
    p.add_argument("--n", type=positive, default=64, help="how many samples (default 64)")
    p.add_argument("--out", default="samples.png", help="PNG to write (default samples.png)")
    p.add_argument("--label", type=int, default=None, help="class of every sample (cGAN only)")
    p.add_argument("--seed", type=seed, default=0, help="noise seed (default 0)")
    p.add_argument("--nrow", type=positive, default=None, help="images per row (default 8, "
                   "or the number of classes for a cGAN)")  # fmt: skip


def run(args) -> int:
    import math

    import torch

    from rnnlab.data import DATASETS
    from rnnlab.evaluation.generative_report import generate
    from rnnlab.training import families
    from rnnlab.utils import save_image_grid

    cfg, model = open_run(args.run, getattr(args, "checkpoint", None))
    if "generation" not in families.get(cfg.model.family).supports:
        takes = [f.name for f in families.registry().values() if "generation" in f.supports]
        raise UsageError(
            f"RUN {args.run} is a {cfg.model.family} run; sample takes {', '.join(takes)} runs"
        )
    need = args.n * 4 * math.prod(DATASETS[cfg.data.dataset].image_shape) * 3  # images + grid
    if need > MAX_BYTES:
        raise UsageError(
            f"--n {args.n}: the grid would need about {need / 2**30:.1f} GiB "
            f"(at most {MAX_BYTES // 2**30} GiB); draw fewer samples"
        )
    n_classes = getattr(model, "n_classes", 0)
    labels = None
    if args.label is not None:
        if not n_classes:
            raise UsageError(f"--label needs a conditional GAN; RUN {args.run} is unconditional")
        if not 0 <= args.label < n_classes:
            raise UsageError(f"--label must be in 0..{n_classes - 1}; got {args.label}")
        labels = torch.full((args.n,), args.label, dtype=torch.long)
    images = generate(model, args.n, family=cfg.model.family, labels=labels, seed=args.seed)
    nrow = args.nrow or (n_classes if n_classes and labels is None else 8)
    path = save_image_grid(images, args.out, nrow=nrow, value_range=(0.0, 1.0))
    print(f"wrote {args.n} samples to {path}")
    return 0
