"""Typed experiment configs, named presets and ``--key=value`` overrides.

A :class:`Config` is four dataclasses (nanoGPT's ``GPTConfig``, composed as in minGPT's
``adder.py``): :class:`DataConfig`, :class:`ModelConfig`, :class:`TrainConfig`,
:class:`RunConfig`. Every default runs. Presets are small TOML files shipped in
``rnnlab/configs/`` (one table per section plus a top-level ``description``); overrides are
validated against the field types, never ``exec``'d::

    cfg = apply_overrides(load_preset("lstm-rows"), ["--train.lr=3e-3", "--epochs=3"])

A bare key (``--epochs``) is accepted when exactly one section has that field.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, as a package
    import tomli as tomllib

__all__ = [
    "CHOICES", "Config", "ConfigError", "DataConfig", "ModelConfig", "RunConfig", "TrainConfig",
    "apply_overrides", "check_config", "config_from_dict", "config_to_dict", "copy_config",
    "list_presets", "load_preset",
]  # fmt: skip


class ConfigError(ValueError):
    """A preset, key or value the configs do not accept (the CLI prints it and exits 2)."""


# after ConfigError, which config_checks imports from here
from .config_checks import CHOICES, check_config, validate_value  # noqa: E402


@dataclass
class DataConfig:
    dataset: str = "digits"  # digits | mnist | fashion-mnist | kmnist | adding
    view: str = "rows"  # images read as rows (T=H), pixels (T=H*W) or permuted pixels
    batch_size: int = 128
    val_fraction: float = 0.1  # held out of train for early stopping / plateau; 0 = none
    data_dir: str | None = None  # searched first (then $RNNLAB_DATA, ~/.cache/rnnlab, ...)
    limit: int = 0  # use only the first `limit` training examples (0 = all)
    seq_len: int = 100  # adding problem: T
    n_train: int = 20000  # adding problem: generated training sequences
    n_test: int = 2000  # adding problem: generated test sequences
    permute_seed: int = 0  # the fixed pixel permutation of view="permuted"


@dataclass
class ModelConfig:
    # classify (images/sequences) | regress | tbptt (adding problem) | autoencode | vae | gan
    # | vaegan (rnnlab.training.families lists each family's kinds)
    family: str = "classify"
    # classify: simple_rnn | lstm | gru | bilstm | cnn | mlp; autoencode: basic | deep | stacked
    # | denoising | contractive | sparse | linear | conv | lstm; vae: mlp | conv; gan: mlp |
    # dcgan; vaegan: dcgan
    kind: str = "lstm"
    hidden_size: int = 128
    num_layers: int = 1
    bidirectional: bool = False  # kind="bilstm" implies it
    dropout: float = 0.0  # Keras's `dropout=`: one input mask per sequence (Gal & Ghahramani)
    recurrent_dropout: float = 0.0  # on the state; forces the explicit (slower) loop
    layer_dropout: float = 0.0  # between stacked layers (torch's nn.LSTM dropout)
    head_dropout: float = 0.0  # before the output Dense
    activation: str = "tanh"  # SimpleRNN / candidate activation
    implementation: str = "auto"  # auto (fused kernels when possible) | fused | explicit
    init: str = "keras"  # keras: Glorot/orthogonal/forget bias 1; torch: U(+-1/sqrt(H))
    chrono_tmax: int = 0  # LSTM: chrono gate biases (Tallec & Ollivier 2018) up to T_max; 0 = off
    # generative families (autoencode / vae / gan / vaegan)
    latent_dim: int = 16  # AE code size, VAE latent, GAN noise z
    base_channels: int = 32  # conv AE (c, 2c), ConvVAE, DCGAN and VAE-GAN widths
    reconstruction: str = "mse"  # autoencode: mse | bce
    likelihood: str = "bernoulli"  # vae: bernoulli | gaussian (learned log-scale)
    noise: str = "gaussian"  # denoising AE corruption: gaussian | masking
    noise_level: float = 0.1  # denoising AE: sigma (gaussian) or drop probability (masking)
    contraction: float = 0.1  # contractive AE: lambda on ||J_f(x)||_F^2
    sparsity: str = "kl"  # sparse AE: kl | l1
    sparsity_weight: float = 1e-3  # sparse AE: beta
    sparsity_target: float = 0.05  # sparse AE (kl): rho
    conditional: bool = False  # gan: condition G and D on the class (Mirza & Osindero 2014)
    minibatch_kernels: int = 0  # gan: minibatch discrimination kernels (Salimans et al.); 0 = off
    minibatch_dim: int = 5  # gan: minibatch discrimination kernel dimension


@dataclass
class TrainConfig:
    epochs: int = 5
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.0  # sgd / rmsprop
    nesterov: bool = False  # sgd: Nesterov momentum (needs momentum > 0)
    beta1: float | None = None  # adam / adamw: None = 0.9 (0.5 for gan / vaegan, Radford et al.)
    beta2: float = 0.999  # adam / adamw
    weight_decay: float = 0.0
    schedule: str = "none"  # none | step | cosine | onecycle | plateau
    step_size: int = 10  # schedule="step": epochs between decays
    gamma: float = 0.1  # schedule="step"/"plateau": decay factor
    clip_norm: float | None = None  # rescale the global gradient norm (Pascanu et al. 2013)
    clip_value: float | None = None  # clamp each gradient component
    seed: int = 0
    deterministic: bool = False  # torch.use_deterministic_algorithms: resume is bit-exact
    patience: int = 0  # early stopping after this many epochs without improvement; 0 = off
    device: str = "auto"  # auto | cpu | cuda
    precision: str = "fp32"  # fp32 | bf16 | fp16 (autocast; fp16 with loss scaling, CUDA only)
    cuda_graph: bool = False  # capture the whole train step as one CUDA graph (.cuda_graph)
    tbptt_k: int = 50  # family="tbptt": steps per truncated chunk
    max_steps: int = 0  # stop each epoch after this many batches (0 = all); --dry-run uses it
    eval_batch_size: int = 1000
    # Keras-style regularizers (classify / regress; rnnlab.layers.regularizers)
    kernel_l1: float = 0.0  # input weights
    kernel_l2: float = 0.0
    recurrent_l1: float = 0.0  # recurrent weights
    recurrent_l2: float = 0.0
    bias_l1: float = 0.0
    bias_l2: float = 0.0
    max_norm: float | None = None  # max-norm constraint after each optimizer step
    # adversarial training (classify): none | fgsm (Goodfellow et al. 2014) | pgd (Madry et
    # al. 2018) | fast (FGSM with random start, Wong et al. 2020)
    adversarial: str = "none"
    adv_eps: float = 0.3
    adv_alpha: float | None = None  # step; None = 2.5 eps / steps (pgd), 1.25 eps (fast)
    adv_steps: int = 10  # pgd
    adv_mix: float | None = None  # weight of the clean loss; None = 0.5 (fgsm), 0 (pgd, fast)
    adv_eps_warmup: float = 0.0  # epochs over which eps ramps linearly from 0 (0 = off)
    # generative families
    beta: float = 1.0  # vae: weight of the KL term (Higgins et al. 2017)
    iw_k: int = 0  # vae: importance samples of the test NLL after training (0 = off)
    gan_loss: str = "non_saturating"  # gan / vaegan generator loss: non_saturating | minimax
    label_smoothing: float = 0.0  # gan: real target 1 - label_smoothing (Salimans et al.)
    vaegan_gamma: float = 1e-2  # vaegan: weight of the feature reconstruction in G's loss
    samples: int = 64  # images in each epoch's sample grid (generative families)
    pretrain_epochs: int = 1  # stacked autoencoder: greedy epochs per layer before fine-tuning


@dataclass
class RunConfig:
    out_dir: str = "runs"
    name: str = ""  # "" -> <preset>-<timestamp>
    description: str = ""
    preset: str = ""
    tensorboard: bool = False  # also write TensorBoard scalars (needs `pip install tensorboard`)


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    run: RunConfig = field(default_factory=RunConfig)


SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig, "run": RunConfig}


def _keys() -> dict[str, type]:
    """Every ``section.field`` with its annotated type."""
    out = {}
    for section, cls in SECTIONS.items():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            out[f"{section}.{f.name}"] = hints[f.name]
    return out


def _resolve_key(key: str, keys: dict[str, type]) -> str:
    if key in keys:
        return key
    short = [k for k in keys if k.split(".", 1)[1] == key]
    if len(short) == 1:
        return short[0]
    if len(short) > 1:
        raise ConfigError(f"key `{key}` is ambiguous: say one of {', '.join(short)}")
    names = list(keys) + [k.split(".", 1)[1] for k in keys]
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.5)
    hint = f"; did you mean `{close[0]}`?" if close else f"; valid keys: {', '.join(keys)}"
    raise ConfigError(f"unknown config key `{key}`{hint}")


def _coerce(key: str, tp: Any, value: Any) -> Any:
    """``value`` (a string from the command line, or a TOML value) as type ``tp``."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "")):
            return None
        tp = next(a for a in args if a is not type(None))
    expected = tp.__name__
    try:
        if tp is bool:
            if isinstance(value, bool):
                return value
            s = str(value).lower()
            if s in ("1", "true", "yes", "on"):
                return True
            if s in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if tp is int and (isinstance(value, bool) or isinstance(value, float)):
            raise ValueError(value)
        if tp is float and isinstance(value, bool):
            raise ValueError(value)
        return tp(value) if not (tp is int and isinstance(value, str)) else int(value, 10)
    except (TypeError, ValueError):
        raise ConfigError(f"`{key}` expects {expected}, got {value!r}") from None


def _set(cfg: Config, key: str, raw: Any, keys: dict[str, type]) -> None:
    section, name = key.split(".", 1)
    setattr(getattr(cfg, section), name, validate_value(key, _coerce(key, keys[key], raw)))


def config_from_dict(data: dict, base: Config | None = None) -> Config:
    """A :class:`Config` from nested ``{section: {field: value}}`` (TOML or config.json)."""
    cfg = copy_config(base) if base is not None else Config()
    keys = _keys()
    for section, values in data.items():
        if section == "description":
            cfg.run.description = str(values)
            continue
        if not isinstance(values, dict):
            _resolve_key(section, keys)  # raises with a suggestion
            raise ConfigError(f"`{section}` must be a table of keys, got {values!r}")
        for name, raw in values.items():
            key = _resolve_key(f"{section}.{name}", keys)
            _set(cfg, key, raw, keys)
    return check_config(cfg)


def copy_config(cfg: Config) -> Config:
    """A copy whose sections can be changed without touching ``cfg``."""
    return Config(**{s: dataclasses.replace(getattr(cfg, s)) for s in SECTIONS})


def config_to_dict(cfg: Config) -> dict:
    return dataclasses.asdict(cfg)


def apply_overrides(cfg: Config, overrides: list[str]) -> Config:
    """A copy of ``cfg`` with ``--section.key=value`` (or ``--key=value``) flags applied."""
    cfg = copy_config(cfg)
    keys = _keys()
    for item in overrides:
        text = item[2:] if item.startswith("--") else item
        if "=" not in text:
            raise ConfigError(f"override {item!r} must look like --section.key=value")
        name, raw = text.split("=", 1)
        _set(cfg, _resolve_key(name.replace("-", "_"), keys), raw, keys)
    return check_config(cfg)


def _preset_files() -> dict[str, Any]:
    folder = resources.files("rnnlab") / "configs"
    # tune-*.toml are search spaces for `rnnlab tune`, not presets
    return {
        p.name[:-5]: p
        for p in folder.iterdir()
        if p.name.endswith(".toml") and not p.name.startswith("tune-")
    }


def list_presets() -> dict[str, str]:
    """``{name: one-line description}`` of the shipped presets, sorted by name."""
    out = {}
    for name, path in sorted(_preset_files().items()):
        out[name] = str(tomllib.loads(path.read_text()).get("description", "")).strip()
    return out


def load_preset(name: str) -> Config:
    """The shipped preset ``name`` (see :func:`list_presets`), or a preset file given by its
    path (anything ending in ``.toml`` or holding a path separator, e.g. the ``best.toml``
    that ``rnnlab tune`` writes), as a :class:`Config`."""
    if name.endswith(".toml") or "/" in name or os.sep in name:
        path = Path(name)
        if not path.is_file():
            raise ConfigError(f"preset file {path} does not exist")
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"preset file {path} is not valid TOML: {e}") from None
        cfg = config_from_dict(data)
        cfg.run.preset = path.stem
        return cfg
    files = _preset_files()
    if name not in files:
        close = difflib.get_close_matches(name, list(files), n=1, cutoff=0.4)
        hint = f"; did you mean `{close[0]}`?" if close else ""
        raise ConfigError(f"unknown preset `{name}`{hint} (available: {', '.join(sorted(files))})")
    try:
        data = tomllib.loads(files[name].read_text())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"preset `{name}` is not valid TOML: {e}") from None
    cfg = config_from_dict(data)
    cfg.run.preset = name
    return cfg
