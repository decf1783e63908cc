"""``rnnlab summary PRESET [--section.key=value ...]``: the preset's model as a Keras-format
table (layers, output shapes, parameter counts), built on synthetic data, nothing read."""

from __future__ import annotations

from .common import resolve_config

HELP = "model table of a preset"
SHARED: tuple[str, ...] = ()
OVERRIDES = True


def add_arguments(p) -> None:
    p.add_argument("preset", help="a shipped preset (`rnnlab presets`) or a .toml")


def run(args) -> int:
    from rnnlab.layers import summary
    from rnnlab.training import experiment

    cfg = resolve_config(args, args.preset)
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
