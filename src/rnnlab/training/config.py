"""Typed experiment configs, named presets and ``--key=value`` overrides.

A :class:`Config` is four dataclasses (nanoGPT's ``GPTConfig``, composed as in minGPT's
``adder.py``): :class:`DataConfig`, :class:`ModelConfig`, :class:`TrainConfig`,
:class:`RunConfig`. Every default runs. Presets are small TOML files shipped in
``rnnlab/configs/`` (one table per section plus a top-level ``description``); overrides are
validated against the field types, never ``exec``'d::

    cfg = apply_overrides(load_preset("lstm-rows"), ["--train.lr=3e-3", "--epochs=3"])

A bare key (``--epochs``) is accepted when exactly one section has that field.

Each field carries its own rules in its metadata (:func:`key`): a one-line ``help``, the
``choices`` it accepts (a tuple, or a function returning one when the list lives elsewhere,
e.g. the family registry) and a numeric range; :func:`validate_value` reads them as each value
is set, :func:`check_config` then runs the checks that span several keys and asks the chosen
family (:mod:`.families`) which keys it uses: a key set away from its default that the family
does not read is refused. :func:`reference` lists every key with its type, default, help and
choices (``rnnlab config`` prints it).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import os
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from rnnlab.layers.cells import ACTIVATIONS, INITS
from rnnlab.layers.recurrent import IMPLEMENTATIONS

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, as a package
    import tomli as tomllib

__all__ = [
    "Config", "ConfigError", "DataConfig", "KeyInfo", "ModelConfig", "RunConfig", "TrainConfig",
    "apply_overrides", "check_config", "config_from_dict", "config_to_dict", "copy_config",
    "key", "list_presets", "load_preset", "reference", "validate_value",
]  # fmt: skip

SEED_LIMIT = 2**63  # torch.manual_seed takes int64 seeds; larger ones overflow in C


class ConfigError(ValueError):
    """A preset, key or value the configs do not accept (the CLI prints it and exits 2)."""


def key(
    default: Any,
    help: str,
    *,
    choices: tuple | Callable[[], tuple] | None = None,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
) -> Any:
    """A dataclass field with its rules in ``metadata``: ``help`` (one line), ``choices``
    (values it accepts; a callable is asked when a value is checked) and the bounds ``ge`` /
    ``gt`` / ``le`` / ``lt``. Floats must also be finite (``inf`` and ``nan`` are refused)."""
    rules = {"help": help, "choices": choices, "ge": ge, "gt": gt, "le": le, "lt": lt}
    return field(default=default, metadata=rules)


def _families() -> tuple[str, ...]:
    from .families import names

    return names()


@dataclass
class DataConfig:
    dataset: str = key("digits", "dataset to read (each family says which it takes)")
    view: str = key("rows", "how images become sequences: rows (T=H), pixels (T=H*W), permuted "
                    "pixels", choices=("rows", "pixels", "permuted"))  # fmt: skip
    batch_size: int = key(128, "examples per training batch", ge=1)
    val_fraction: float = key(0.1, "share of train held out for validation (best checkpoint, "
                              "early stopping, plateau); 0 = none", ge=0.0, lt=1.0)  # fmt: skip
    data_dir: str | None = key(None, "folder searched first for the data (then $RNNLAB_DATA, "
                               "~/.cache/rnnlab, ...)")  # fmt: skip
    limit: int = key(0, "train on the first `limit` training examples only (0 = all)", ge=0)
    seq_len: int = key(100, "adding problem: sequence length T", ge=2)
    n_train: int = key(20000, "adding problem: generated training sequences", ge=1)
    n_test: int = key(2000, "adding problem: generated test sequences", ge=1)
    permute_seed: int = key(0, "view=permuted: seed of the fixed pixel permutation", ge=0,
                            lt=2**32)  # fmt: skip
    # text (language-model, text-classify)
    bptt: int = key(64, "language model: steps per truncated-BPTT window", ge=1)
    level: str = key("char", "dataset=text language model: char or word tokens",
                     choices=("char", "word"))  # fmt: skip
    val_path: str = key("", "language model, dataset=text: a validation corpus ('' = the last "
                        "10% of data.path)")  # fmt: skip
    test_path: str = key("", "language model, dataset=text: a test corpus ('' = none)")
    format: str = key("auto", "labelled sentences: space (LABEL text), tsv (label<TAB>text), "
                      "csv (label,text header) or auto",
                      choices=("auto", "space", "tsv", "csv"))  # fmt: skip
    max_vocab: int = key(0, "text: keep the most frequent tokens, the rest -> <unk> (0 = all)",
                         ge=0)  # fmt: skip
    min_freq: int = key(1, "text-classify: words seen fewer times in training -> <unk>", ge=1)
    lowercase: bool = key(False, "text-classify: lower-case every sentence (training, test, "
                          "predict) before the vocabulary (Kim 2014)")  # fmt: skip
    vocab: str = key("", "text: the vocabulary the run trained with, JSON (written by "
                     "training; used unchanged by evaluate and generate)")  # fmt: skip
    label_names: str = key("", "text-classify: the class names the run trained with, JSON "
                           "(written by training)")  # fmt: skip

    # the user's own files (families seq-classify, forecast, seq-anomaly; rnnlab.data.files)
    train: str = key("", "seq-classify: the training file (.ts, .csv/.tsv, .npy/.npz); "
                     "text-classify (dataset=text): the labelled sentences")  # fmt: skip
    val: str = key("", "text-classify (dataset=text): a validation file; '' = hold out "
                   "data.val_fraction of data.train")  # fmt: skip
    test: str = key("", "seq-classify: the test file ('' = hold out data.test_fraction of "
                    "train); text-classify (dataset=text): the test file (needed)")  # fmt: skip
    test_fraction: float = key(0.2, "seq-classify without data.test: share of the training "
                               "file held out as the test split", gt=0.0, lt=1.0)  # fmt: skip
    path: str = key("", "forecast / seq-anomaly: the series CSV, one row per time step; "
                    "language model, dataset=text: your UTF-8 corpus")  # fmt: skip
    target: str = key(
        "",
        "seq-classify: a CSV's label column; forecast: the target column(s), "
        "comma-separated; seq-anomaly: the column(s) to score ('' = all)",
    )
    inputs: str = key("", "forecast: input columns, comma-separated; '' = the targets only "
                      "(univariate), 'all' = every numeric column")  # fmt: skip
    id_column: str = key("", "seq-classify: a long CSV's sequence-id column ('' = a wide CSV, "
                         "one sequence per row)")  # fmt: skip
    time_column: str = key("", "the time column of a CSV; '' = a column named date/time/"
                           "timestamp, else the first non-numeric one")  # fmt: skip
    fill: str = key("none", "missing, NaN or inf values: none (an error), ffill, zero, linear",
                    choices=("none", "ffill", "zero", "linear"))  # fmt: skip
    scaler: str = key("", "seq-classify / forecast / seq-anomaly: the scaler to use as JSON "
                      "(mean, std); '' = fit it on the training split (rnnlab evaluate sets "
                      "it from the run's data.json)")  # fmt: skip
    input_len: int = key(96, "forecast: input steps per window (L)", ge=1)
    horizon: int = key(24, "forecast: steps predicted per window (H)", ge=1)
    split: str = key("informer", "forecast: informer (ETTh1 rows [0,8640) / [8640,11520) / "
                     "[11520,14400)) or TRAIN,VAL fractions such as 0.7,0.1")  # fmt: skip
    season: int = key(24, "forecast: season of the seasonal-naive baseline (24 = a day of "
                      "hourly rows)", ge=1)  # fmt: skip
    labels: str = key("", "seq-anomaly: JSON of labelled windows (NAB's combined_windows.json); "
                      "'' = combined_windows.json beside data.path, if there")  # fmt: skip
    probation: float = key(
        0.15,
        "seq-anomaly: first share of the series that trains the "
        "detector and sets its threshold (NAB: 0.15)",
        gt=0.0,
        lt=1.0,
    )
    window: int = key(64, "seq-anomaly: steps per window (autoencoder window, forecaster "
                      "input)", ge=2)  # fmt: skip


@dataclass
class ModelConfig:
    family: str = key("classify", "how the model is trained (rnnlab.training.families)",
                      choices=_families)  # fmt: skip
    kind: str = key("lstm", "the model within the family (each family lists its kinds)")
    hidden_size: int = key(128, "units per recurrent/hidden layer", ge=1)
    num_layers: int = key(1, "stacked recurrent or hidden layers", ge=1)
    bidirectional: bool = key(False, "read sequences both ways (kind=bilstm implies it)")
    dropout: float = key(0.0, "Keras `dropout=`: one input mask per sequence (Gal & "
                         "Ghahramani 2016)", ge=0.0, lt=1.0)  # fmt: skip
    recurrent_dropout: float = key(0.0, "dropout on the recurrent state; forces the explicit "
                                   "loop", ge=0.0, lt=1.0)  # fmt: skip
    layer_dropout: float = key(0.0, "dropout between stacked layers (torch's nn.LSTM dropout)",
                               ge=0.0, lt=1.0)  # fmt: skip
    head_dropout: float = key(0.0, "dropout before the output Dense", ge=0.0, lt=1.0)
    activation: str = key("tanh", "SimpleRNN / candidate activation", choices=tuple(ACTIVATIONS))
    implementation: str = key("auto", "recurrent backend: auto = torch's fused kernels when "
                              "they apply, else explicit (hand-derived BPTT); reference = the "
                              "readable autograd loop; triton = CUDA kernels",
                              choices=IMPLEMENTATIONS)  # fmt: skip
    init: str = key("keras", "keras: Glorot/orthogonal/forget bias 1; torch: U(+-1/sqrt(H))",
                    choices=INITS)  # fmt: skip
    chrono_tmax: int = key(0, "LSTM chrono gate biases up to T_max (Tallec & Ollivier 2018); "
                           "0 = off", ge=0)  # fmt: skip
    latent_dim: int = key(16, "autoencoder code size, VAE latent, GAN noise z", ge=1)
    base_channels: int = key(32, "conv AE (c, 2c), ConvVAE, DCGAN and VAE-GAN widths", ge=1)
    reconstruction: str = key("mse", "autoencoder reconstruction loss", choices=("mse", "bce"))
    likelihood: str = key("bernoulli", "VAE decoder: bernoulli, or gaussian with a learned "
                          "log-scale", choices=("bernoulli", "gaussian"))  # fmt: skip
    noise: str = key("gaussian", "denoising autoencoder corruption",
                     choices=("gaussian", "masking"))  # fmt: skip
    noise_level: float = key(0.1, "denoising AE: sigma (gaussian) or drop probability "
                             "(masking)", ge=0.0)  # fmt: skip
    contraction: float = key(0.1, "contractive AE: lambda on ||J_f(x)||_F^2", ge=0.0)
    sparsity: str = key("kl", "sparse AE penalty", choices=("kl", "l1"))
    sparsity_weight: float = key(1e-3, "sparse AE: beta, the penalty's weight", ge=0.0)
    sparsity_target: float = key(0.05, "sparse AE (kl): rho, the target activation", gt=0.0,
                                 le=1.0)  # fmt: skip
    conditional: bool = key(False, "GAN: condition G and D on the class (Mirza & Osindero "
                            "2014)")  # fmt: skip
    minibatch_kernels: int = key(0, "GAN: minibatch discrimination kernels (Salimans et al. "
                                 "2016); 0 = off", ge=0)  # fmt: skip
    minibatch_dim: int = key(5, "GAN: minibatch discrimination kernel dimension", ge=1)
    minibatch_scale: bool = key(False, "GAN: rescale the minibatch kernels on the first batch "
                                "(Salimans et al.'s data-dependent init)")  # fmt: skip
    # own-data families
    teacher_forcing: float = key(
        0.0,
        "forecast seq2seq kinds: probability of feeding the true "
        "previous value to the decoder in training",
        ge=0.0,
        le=1.0,
    )
    residual: bool = key(True, "forecast: predict the change from the last observed value")
    threshold_k: float = key(5.0, "seq-anomaly: threshold = median + k * 1.4826 MAD of the "
                             "probationary scores", gt=0.0)  # fmt: skip
    # text (language-model, text-classify)
    embed_dim: int = key(128, "text: token embedding width", ge=1)
    tie_weights: bool = key(False, "language model: the projection reuses the embedding "
                            "(Press & Wolf 2016; needs embed_dim == hidden_size)")  # fmt: skip
    init_scale: float = key(0.0, "language model: every weight U(-s, s) (Zaremba et al.: 0.1); "
                            "0 = the layers' init", ge=0.0)  # fmt: skip
    pooling: str = key("last", "text-classify: last states, or max / mean / both "
                       "concatenated over the valid words",
                       choices=("last", "max", "mean", "max_mean"))  # fmt: skip
    embed_dropout: float = key(0.0, "text-classify: dropout on the word embeddings", ge=0.0,
                               lt=1.0)  # fmt: skip
    word_dropout: float = key(0.0, "text-classify: in training, each word becomes <unk> with "
                              "this probability (Bowman et al. 2016)", ge=0.0,
                              lt=1.0)  # fmt: skip
    embed_init: str = key("normal", "text-classify: word embeddings N(0, 1) (torch) or "
                          "U(-0.25, 0.25) (Kim 2014's random vectors)",
                          choices=("normal", "uniform"))  # fmt: skip


OPTIMIZERS = ("sgd", "adam", "rmsprop", "adagrad", "adadelta", "adamw")
SCHEDULES = ("none", "step", "decay", "cosine", "onecycle", "plateau")


@dataclass
class TrainConfig:
    epochs: int = key(5, "passes over the training data", ge=1)
    optimizer: str = key("adam", "optimizer (weight_decay applies to each)", choices=OPTIMIZERS)
    lr: float = key(1e-3, "learning rate (the peak of onecycle)", gt=0.0)
    momentum: float = key(0.0, "sgd / rmsprop momentum", ge=0.0, lt=1.0)
    nesterov: bool = key(False, "sgd: Nesterov momentum (needs momentum > 0)")
    beta1: float | None = key(None, "adam / adamw beta1; none = the family's default (0.9; 0.5 "
                              "for GANs, Radford et al. 2016)", ge=0.0, lt=1.0)  # fmt: skip
    beta2: float = key(0.999, "adam / adamw beta2", ge=0.0, lt=1.0)
    weight_decay: float = key(0.0, "weight decay of the optimizer", ge=0.0)
    schedule: str = key("none", "learning-rate schedule", choices=SCHEDULES)
    step_size: int = key(10, "schedule=step: epochs between decays; decay: epochs at the full "
                         "lr", ge=1)  # fmt: skip
    gamma: float = key(0.1, "schedule=step/decay/plateau: decay factor (decay: per epoch)",
                       gt=0.0, le=1.0)  # fmt: skip
    plateau_patience: int = key(1, "schedule=plateau: epochs without improvement before the "
                                "lr is multiplied by gamma (pytorch/examples' "
                                "word_language_model: 0, at once)", ge=0)  # fmt: skip
    min_lr: float = key(0.0, "schedule=plateau: the lr is never decayed below this", ge=0.0)
    clip_norm: float | None = key(None, "rescale the global gradient norm to at most this "
                                  "(Pascanu et al. 2013); none = off", gt=0.0)  # fmt: skip
    clip_value: float | None = key(None, "clamp each gradient component to +-this; none = off",
                                   gt=0.0)  # fmt: skip
    seed: int = key(0, "seed of every RNG (weights, data order, dropout)", ge=0, lt=SEED_LIMIT)
    deterministic: bool = key(False, "torch.use_deterministic_algorithms (bit-exact resume "
                              "on GPU)")  # fmt: skip
    patience: int = key(0, "early stopping after this many epochs without improvement; 0 = off",
                        ge=0)  # fmt: skip
    restore_best: bool = key(True, "end with the weights of the best validation epoch (Keras's "
                             "restore_best_weights); needs a validation split")  # fmt: skip
    monitor: str = key("loss", "what makes a validation epoch best (restore_best, patience, "
                       "checkpoints/best.pt): the lowest loss, or the highest accuracy "
                       "(families that report one)", choices=("loss", "accuracy"))  # fmt: skip
    device: str = key("auto", "where to train", choices=("auto", "cpu", "cuda"))
    precision: str = key("fp32", "autocast precision; fp16 adds loss scaling (CUDA only)",
                         choices=("fp32", "bf16", "fp16"))  # fmt: skip
    cuda_graph: bool = key(False, "capture the whole train step as one CUDA graph")
    tbptt_k: int = key(50, "tbptt: steps per truncated chunk", ge=1)
    max_steps: int = key(0, "stop each epoch after this many batches (0 = all)", ge=0)
    eval_batch_size: int = key(1000, "examples per evaluation batch", ge=1)
    kernel_l1: float = key(0.0, "L1 on input weights (Keras kernel_regularizer)", ge=0.0)
    kernel_l2: float = key(0.0, "L2 on input weights (Keras's, no factor 1/2)", ge=0.0)
    recurrent_l1: float = key(0.0, "L1 on recurrent weights", ge=0.0)
    recurrent_l2: float = key(0.0, "L2 on recurrent weights", ge=0.0)
    bias_l1: float = key(0.0, "L1 on biases", ge=0.0)
    bias_l2: float = key(0.0, "L2 on biases", ge=0.0)
    max_norm: float | None = key(None, "max-norm constraint on each unit's incoming weights "
                                 "after every step; none = off", gt=0.0)  # fmt: skip
    adversarial: str = key("none", "adversarial training: fgsm (Goodfellow et al. 2014), pgd "
                           "(Madry et al. 2018), fast (Wong et al. 2020)",
                           choices=("none", "fgsm", "pgd", "fast"))  # fmt: skip
    adv_eps: float = key(0.3, "adversarial training: L-inf radius", ge=0.0)
    adv_alpha: float | None = key(None, "attack step; none = 2.5 eps / steps (pgd), 1.25 eps "
                                  "(fast)", gt=0.0)  # fmt: skip
    adv_steps: int = key(10, "pgd: attack steps", ge=1)
    adv_mix: float | None = key(None, "weight of the clean loss; none = 0.5 (fgsm), 0 (pgd, "
                                "fast)", ge=0.0, le=1.0)  # fmt: skip
    adv_eps_warmup: float = key(0.0, "epochs over which eps ramps up from 0 (0 = off)", ge=0.0)
    beta: float = key(1.0, "vae: weight of the KL term (Higgins et al. 2017)", ge=0.0)
    iw_k: int = key(0, "vae: importance samples of the binarized test NLL (0 = off)", ge=0)
    gan_loss: str = key("non_saturating", "GAN generator loss (Goodfellow et al. 2014)",
                        choices=("non_saturating", "minimax"))  # fmt: skip
    label_smoothing: float = key(0.0, "gan: real target 1 - label_smoothing (Salimans et al.)",
                                 ge=0.0, lt=1.0)  # fmt: skip
    vaegan_gamma: float = key(1e-2, "vaegan: weight of the feature reconstruction in G's loss",
                              ge=0.0)  # fmt: skip
    samples: int = key(64, "images in each epoch's sample grid", ge=1)
    pretrain_epochs: int = key(1, "stacked autoencoder: greedy epochs per layer before "
                               "fine-tuning", ge=0)  # fmt: skip
    time_budget: float = key(0.0, "stop training after this many seconds (mid-epoch if need "
                             "be), checkpoint, then the final evaluation; 0 = none",
                             ge=0.0)  # fmt: skip


@dataclass
class RunConfig:
    out_dir: str = key("runs", "folder that holds run folders")
    name: str = key("", "run folder name; empty = <preset>-<timestamp>")
    description: str = key("", "free text stored with the run")
    preset: str = key("", "the preset this config came from")
    tensorboard: bool = key(False, "also write TensorBoard scalars (pip install tensorboard)")


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    run: RunConfig = field(default_factory=RunConfig)


SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig, "run": RunConfig}


@dataclass(frozen=True)
class KeyInfo:
    """One config key as :func:`reference` lists it."""

    section: str
    name: str
    type: str
    default: Any
    help: str
    choices: tuple | None


def _type_name(tp: Any) -> str:
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " | ".join("none" if a is type(None) else a.__name__ for a in args)
    return tp.__name__


@functools.cache
def _fields() -> dict[str, tuple[Any, dataclasses.Field]]:
    """Every ``section.field`` with its annotated type and its dataclass field."""
    out = {}
    for section, cls in SECTIONS.items():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            out[f"{section}.{f.name}"] = (hints[f.name], f)
    return out


def _choices(f: dataclasses.Field) -> tuple | None:
    choices = f.metadata.get("choices")
    return tuple(choices()) if callable(choices) else choices


def reference() -> list[KeyInfo]:
    """Every config key: section, name, type, default, one-line help and choices (or None)."""
    return [
        KeyInfo(
            k.split(".")[0],
            f.name,
            _type_name(tp),
            f.default,
            f.metadata.get("help", ""),
            _choices(f),
        )  # fmt: skip
        for k, (tp, f) in _fields().items()
    ]


def _num(x: float) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"


def _bounds(f: dataclasses.Field) -> str:
    """The range of a field in words: "a positive integer", ">= 0", "in [0, 1)"..."""
    m = f.metadata
    lo = m["ge"] if m.get("ge") is not None else m.get("gt")
    hi = m["le"] if m.get("le") is not None else m.get("lt")
    if hi is None and m.get("ge") == 1 and f.type in (int, "int"):
        return "a positive integer"
    if hi is None:
        return f">= {_num(lo)}" if m.get("ge") is not None else f"> {_num(lo)}"
    if lo is None:
        return f"<= {_num(hi)}" if m.get("le") is not None else f"< {_num(hi)}"
    left = "[" if m.get("ge") is not None else "("
    right = "]" if m.get("le") is not None else ")"
    return f"in {left}{_num(lo)}, {_num(hi)}{right}"


def validate_value(name: str, value: Any) -> Any:
    """``value`` if key ``section.field`` accepts it (its choices and range), else
    :class:`ConfigError` naming the key, what it expects and what it got."""
    _, f = _fields()[name]
    if value is None:
        return value
    choices = _choices(f)
    if choices is not None and value not in choices:
        raise ConfigError(f"`{name}` must be one of {', '.join(map(str, choices))}; got {value!r}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"`{name}` must be a finite number, got {value!r}")
    m = f.metadata
    ok = all((
        m.get("ge") is None or value >= m["ge"], m.get("gt") is None or value > m["gt"],
        m.get("le") is None or value <= m["le"], m.get("lt") is None or value < m["lt"],
    ))  # fmt: skip
    if not ok:
        raise ConfigError(f"`{name}` must be {_bounds(f)}, got {value!r}")
    return value


def _keys() -> dict[str, type]:
    """Every ``section.field`` with its annotated type."""
    return {k: tp for k, (tp, _) in _fields().items()}


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


_MOMENTUM = ("sgd", "rmsprop")
_BETAS = ("adam", "adamw")


def check_config(cfg: Config) -> Config:
    """Checks that span several keys (each single value was checked as it was set), then the
    chosen family's: its kinds and datasets, the keys it uses, what it supports."""
    t = cfg.train
    if t.nesterov and (t.optimizer != "sgd" or not t.momentum > 0):
        raise ConfigError(
            f"`train.nesterov` needs optimizer=sgd with `train.momentum` > 0, got "
            f"optimizer={t.optimizer!r}, momentum={t.momentum!r}"
        )
    if t.momentum and t.optimizer not in _MOMENTUM:
        raise ConfigError(
            f"`train.momentum` applies to {' and '.join(_MOMENTUM)} only; optimizer "
            f"{t.optimizer!r} got momentum={t.momentum!r} (set it to 0)"
        )
    if t.beta1 is not None and t.optimizer not in _BETAS:
        raise ConfigError(
            f"`train.beta1` applies to {' and '.join(_BETAS)} only; got optimizer {t.optimizer!r}"
        )
    if t.precision == "fp16" and t.device == "cpu":
        raise ConfigError(
            "`train.precision=fp16` needs a CUDA device (loss-scaled fp16 training runs on "
            "GPU only); use --precision bf16 on CPU"
        )
    from .families import check_family  # the registry imports this module

    check_family(cfg)
    return cfg


def changed_keys(cfg: Config) -> list[str]:
    """The ``section.field`` keys whose value differs from the field's default."""
    return [
        k for k, (_, f) in _fields().items()
        if getattr(getattr(cfg, k.split(".")[0]), f.name) != f.default
    ]  # fmt: skip
