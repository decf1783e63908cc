"""Which values each config key accepts, and the checks that span several keys. Used by
:mod:`.config` as each value is set (:func:`validate_value`) and after a whole config is read
(:func:`check_config`); every error names the key, what it expects and what it got.
"""

from __future__ import annotations

from typing import Any

from .config import ConfigError  # defined before config.py imports this module

__all__ = ["CHOICES", "check_config", "validate_value"]

CHOICES: dict[str, tuple[str, ...]] = {
    "data.dataset": ("digits", "mnist", "fashion-mnist", "kmnist", "adding"),
    "data.view": ("rows", "pixels", "permuted"),
    "model.family": ("classify", "regress", "tbptt", "autoencode", "vae", "gan", "vaegan"),
    "model.kind": (
        "simple_rnn",
        "lstm",
        "gru",
        "bilstm",
        "cnn",
        "cnn-small",
        "mlp",
        "basic",
        "deep",
        "stacked",
        "denoising",
        "contractive",
        "sparse",
        "linear",
        "conv",
        "dcgan",
    ),
    "model.reconstruction": ("mse", "bce"),
    "model.likelihood": ("bernoulli", "gaussian"),
    "model.noise": ("gaussian", "masking"),
    "model.sparsity": ("kl", "l1"),
    "model.activation": ("tanh", "relu", "sigmoid", "hard_sigmoid", "softsign", "linear"),
    "model.implementation": ("auto", "fused", "explicit"),
    "model.init": ("keras", "torch"),
    "train.optimizer": ("sgd", "adam", "rmsprop", "adagrad", "adamw"),
    "train.schedule": ("none", "step", "cosine", "onecycle", "plateau"),
    "train.device": ("auto", "cpu", "cuda"),
    "train.precision": ("fp32", "bf16", "fp16"),
    "train.adversarial": ("none", "fgsm", "pgd", "fast"),
    "train.gan_loss": ("non_saturating", "minimax"),
}
_POSITIVE = {
    "data.batch_size", "train.epochs", "model.hidden_size", "model.num_layers",
    "model.latent_dim", "model.base_channels", "model.minibatch_dim", "train.adv_steps",
    "train.samples", "train.step_size",
}  # fmt: skip
_NON_NEGATIVE = {
    "train.weight_decay", "train.kernel_l1", "train.kernel_l2", "train.recurrent_l1",
    "train.recurrent_l2", "train.bias_l1", "train.bias_l2", "train.adv_eps", "train.iw_k",
    "train.adv_eps_warmup", "model.chrono_tmax",
    "model.noise_level", "model.contraction", "model.sparsity_weight", "train.beta",
    "model.minibatch_kernels", "train.vaegan_gamma", "train.patience", "train.max_steps",
    "train.pretrain_epochs",
}  # fmt: skip
_UNIT = {"train.momentum", "train.beta1", "train.beta2", "train.label_smoothing"}  # [0, 1)
_RATES = {"model.dropout", "model.recurrent_dropout", "model.layer_dropout", "model.head_dropout"}


def validate_value(key: str, value: Any) -> Any:
    """``value`` if key ``section.field`` accepts it, else :class:`ConfigError`."""
    if key in CHOICES and value not in CHOICES[key]:
        raise ConfigError(f"`{key}` must be one of {', '.join(CHOICES[key])}; got {value!r}")
    if key in _POSITIVE and value < 1:
        raise ConfigError(f"`{key}` must be a positive integer, got {value!r}")
    if key in _RATES and not 0.0 <= value < 1.0:
        raise ConfigError(f"`{key}` must be a rate in [0, 1), got {value!r}")
    if key == "data.val_fraction" and not 0.0 <= value < 1.0:
        raise ConfigError(f"`{key}` must be in [0, 1), got {value!r}")
    if key == "train.lr" and not value > 0:
        raise ConfigError(f"`{key}` must be positive, got {value!r}")
    positive_or_none = ("train.clip_norm", "train.clip_value", "train.max_norm", "train.adv_alpha")
    if key in positive_or_none and value is not None and not value > 0:
        raise ConfigError(f"`{key}` must be positive or none, got {value!r}")
    if key in _NON_NEGATIVE and not value >= 0:
        raise ConfigError(f"`{key}` must be >= 0, got {value!r}")
    if key in _UNIT and value is not None and not 0.0 <= value < 1.0:
        raise ConfigError(f"`{key}` must be in [0, 1), got {value!r}")
    if key in ("train.gamma", "model.sparsity_target") and not 0.0 < value <= 1.0:
        raise ConfigError(f"`{key}` must be in (0, 1], got {value!r}")
    if key == "train.adv_mix" and value is not None and not 0.0 <= value <= 1.0:
        raise ConfigError(f"`{key}` must be in [0, 1] or none, got {value!r}")
    return value


_MOMENTUM = ("sgd", "rmsprop")
# families whose step runs forward + loss under autocast (precision.py)
_PRECISION_FAMILIES = ("classify", "regress", "autoencode")
_BETAS = ("adam", "adamw")


def check_config(cfg: Any) -> Any:
    """Checks that span several keys (each single value is checked as it is set)."""
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
    if cfg.model.family in ("gan", "vaegan") and (t.patience or t.schedule == "plateau"):
        raise ConfigError(
            f"family {cfg.model.family!r} has no single loss to monitor: `train.patience` must be "
            f"0 and `train.schedule` not plateau, got {t.patience!r} and {t.schedule!r}"
        )
    if t.adversarial != "none" and cfg.model.family != "classify":
        raise ConfigError(
            f"`train.adversarial` needs model.family=classify, got {cfg.model.family!r}"
        )
    if t.precision != "fp32":
        if cfg.model.family not in _PRECISION_FAMILIES or t.adversarial != "none":
            what = "adversarial training" if t.adversarial != "none" else cfg.model.family
            raise ConfigError(
                f"`train.precision={t.precision}` applies to families "
                f"{', '.join(_PRECISION_FAMILIES)} (not adversarial); got {what!r}"
            )
        if t.precision == "fp16" and t.device == "cpu":
            raise ConfigError(
                "`train.precision=fp16` needs a CUDA device (loss-scaled fp16 training runs on "
                "GPU only); use --precision bf16 on CPU"
            )
    return cfg
