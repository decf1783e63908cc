"""``rnnlab summary PRESET [--section.key=value ...]``: the preset's model as a Keras-format
table (layers, output shapes, parameter counts), built on synthetic data, nothing read."""

from __future__ import annotations

from .common import check_model_size, resolve_config

HELP = "model table of a preset"
SHARED: tuple[str, ...] = ()
OVERRIDES = True


def add_arguments(p) -> None:
    p.add_argument("preset", help="a shipped preset (`rnnlab presets`) or a .toml")


def run(args) -> int:
    from rnnlab.layers import summary
    from rnnlab.training import experiment, families

    cfg = resolve_config(args, args.preset)
    check_model_size(cfg)
    family = families.get(cfg.model.family)
    data = experiment.build_data(cfg, dry_run=True)
    model = experiment.build_model(cfg, data.spec)
    trace = family.summary_input or (lambda cfg, spec: tuple(spec.example.shape))
    shape = trace(cfg, data.spec)  # the input the family's forward takes, or None
    if shape is None:  # several parts, no single forward to trace (VAE-GAN)
        for part, module in family.parts(model).items():
            print(f"{part:<14} {sum(p.numel() for p in module.parameters()):>12,} parameters")
        return 0
    summary(model, shape, name=cfg.run.preset)
    return 0
