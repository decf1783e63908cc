"""The family registry: every way of training a model is ONE :class:`Family` entry.

A family (classify, regress, tbptt, autoencode, vae, gan, vaegan, ...) says what it trains
and how; config validation, ``rnnlab presets``, ``summary``, ``evaluate``, ``sample``,
``report`` and ``tune`` ask this registry (:func:`get`) and never branch on a family's name.

How to add a family
-------------------
Write two files, nothing else:

1. the model, ``src/rnnlab/models/<yours>.py`` (an ``nn.Module``; no training code in it);
2. the entry, ``src/rnnlab/training/families/<name>.py``, ending in ``FAMILY = Family(...)``.
   Every module of this package that defines ``FAMILY`` is registered when the registry is
   first asked (modules whose name starts with ``_`` hold shared helpers).

An entry gives:

- ``name``, ``kinds`` (``model.kind`` values) and ``datasets`` (``data.dataset`` values, or a
  function returning them: a family may read text files or CSVs, not only image datasets);
- ``build_data(cfg, dry_run) -> Data``: train/val/test as tuples of tensors sharing their
  first dimension (``(x, y)``, ``(x, y, lengths)``, ...; the loop batches them with
  :class:`~rnnlab.training.loop.Batches`) or as a ready :class:`Loader` (e.g. a stream of
  consecutive chunks for a stateful language model); ``dry_run`` = small synthetic stand-ins
  (no file is read), also used to size a model when a run is loaded;
- ``build_model(cfg, spec: DataSpec) -> nn.Module``;
- ``steps(cfg, ctx: StepContext) -> (train_step, eval_step)``: ``train_step(model, batch,
  optimizer) -> {metric: float}`` changes weights ONLY through ``ctx.update`` (clipping,
  regularisers, precision and the NaN guard then hold); ``eval_step(model, batch) -> {metric:
  float}`` reports ``loss`` when the family has one to monitor. A step object may subclass
  :class:`~rnnlab.training.loop.Step` for ``on_epoch_start`` / ``epoch_metrics``;
- ``keys``: the config keys it reads beyond :data:`COMMON_KEYS`; a key set away from its
  default that the family does not read is refused, naming key and family;
- ``supports``: a subset of :data:`CAPABILITIES`; ``monitor``: False when there is no single
  loss (GANs: no early stopping, plateau schedule or best checkpoint by loss);
- optional hooks, each with a default: ``parts`` (several optimizers), ``beta1``, ``check``,
  ``prepare``, ``samples``, ``finish``, ``summary_input``, ``generate``, ``model_input``,
  ``loss``.

Two helpers fill what a kind of data implies: :func:`._common.image_family` (the image
datasets, their data view, ``model_input`` and the per-epoch sample grids) and
:func:`._files.file_family` (``data.dataset=file``, the reader keys, ``data.json`` each epoch).

Keep this interface stable: new hooks get defaults, so existing entries keep working.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from torch import Tensor, nn

from ..config import Config, ConfigError, changed_keys
from ..update import Update

__all__ = [
    "CAPABILITIES", "COMMON_KEYS", "Data", "DataSpec", "Family", "Loader", "StepContext",
    "all_datasets", "all_kinds", "check_family", "get", "keyset", "names", "register", "registry",
    "unregister",
]  # fmt: skip

CAPABILITIES = (
    "ddp",  # torchrun: the steps call the model's forward, which DDP wraps
    "cuda_graph",  # the train step can be captured whole (training/cuda_graph.py)
    "precision",  # forward + loss under autocast: bf16 / fp16 are allowed
    "samples",  # writes samples (image grids, generated text) into the run folder each epoch
    "generation",  # ``generate(model, z, labels)``: `rnnlab sample`, the sample-quality report
    "classes",  # the model maps one input to class logits: predict, attack, gates, accuracy
    "likelihood",  # an importance-weighted bound on -log p(x): the test NLL in nats
)

# read by every family (the loop, the optimizer, the update path, the run folder)
COMMON_KEYS = frozenset({
    "data.dataset", "data.batch_size", "data.val_fraction", "data.data_dir", "data.limit",
    "model.family", "model.kind",
    "train.epochs", "train.optimizer", "train.lr", "train.momentum", "train.nesterov",
    "train.beta1", "train.beta2", "train.weight_decay", "train.schedule", "train.step_size",
    "train.gamma", "train.plateau_patience", "train.min_lr", "train.clip_norm",
    "train.clip_value", "train.seed", "train.deterministic",
    "train.patience", "train.restore_best", "train.device", "train.precision",
    "train.cuda_graph", "train.max_steps", "train.eval_batch_size", "train.kernel_l1",
    "train.kernel_l2", "train.recurrent_l1", "train.recurrent_l2", "train.bias_l1",
    "train.bias_l2", "train.max_norm", "train.time_budget", "train.monitor",
    "run.out_dir", "run.name", "run.description", "run.preset", "run.tensorboard",
})  # fmt: skip


class Loader(Protocol):
    """Batches a family serves itself (instead of tuples the loop batches)."""

    def __iter__(self) -> Iterator[tuple]: ...
    def __len__(self) -> int: ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...


@dataclass
class DataSpec:
    """What a model is sized from: one ``example`` input (no batch dim), ``num_classes``
    (0 when there are none) and ``info`` (anything else: a vocabulary size, image shape...)."""

    example: Tensor
    num_classes: int = 0
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class Data:
    """A family's data view: each split a tuple of tensors or a :class:`Loader`."""

    train: tuple[Tensor, ...] | Loader
    val: tuple[Tensor, ...] | Loader | None
    test: tuple[Tensor, ...] | Loader
    num_classes: int  # 0 for regression / generation without labels
    source: str  # one line for the log: what was read, from where
    info: dict[str, Any] = field(default_factory=dict)
    example: Tensor | None = None  # for a Loader: one model input (no batch dim)

    @property
    def spec(self) -> DataSpec:
        example = self.example if self.example is not None else self.train[0][0]
        return DataSpec(example, self.num_classes, self.info)


@dataclass
class StepContext:
    """What :attr:`Family.steps` gets besides the config: the one ``update`` path (bound
    to the run's clipping, regularisers and precision), ``graph`` (True when the run asked
    for a CUDA graph and the family supports it) and ``log``."""

    update: Update = field(default_factory=Update)
    graph: bool = False
    log: Callable[[str], None] = print

    def bind(
        self, train_step: Callable, eval_step: Callable, **options
    ) -> tuple[Callable, Callable]:
        """``(train_step, eval_step)`` as a family's ``steps`` returns them: the train step
        bound to this run's ``update``, both given the family's ``options`` (e.g. a VAE's
        ``beta=cfg.train.beta``)."""
        train = functools.partial(train_step, update=self.update, **options)
        return train, functools.partial(eval_step, **options) if options else eval_step


@dataclass(frozen=True)
class Family:
    """One registry entry; see the module docstring for each field."""

    name: str
    kinds: tuple[str, ...]
    datasets: tuple[str, ...] | Callable[[], tuple[str, ...]]
    build_data: Callable[[Config, bool], Data]
    build_model: Callable[[Config, DataSpec], nn.Module]
    steps: Callable[[Config, StepContext], tuple[Callable, Callable]]
    keys: frozenset[str] = frozenset()
    supports: frozenset[str] = frozenset()
    monitor: bool = True
    description: str = ""
    # {part: module} trained by an optimizer each (GAN: g, d); None = one optimizer
    parts: Callable[[nn.Module], dict[str, nn.Module]] | None = None
    beta1: float = 0.9  # Adam's beta1 when train.beta1 is none
    check: Callable[[Config], None] | None = None  # family-specific cross-key checks
    # before the first epoch of a new run (e.g. greedy pretraining): (cfg, model, data, dry_run)
    prepare: Callable[[Config, nn.Module, Data, bool], None] | None = None
    # per-epoch artefacts: (cfg, data, folder()) -> writer(model, epoch)
    samples: Callable[[Config, Data, Callable], Callable] | None = None
    # extra test metrics after training: (cfg, model, test_batches, device, dry_run) -> dict
    finish: Callable[..., dict[str, float]] | None = None
    # the input `rnnlab summary` traces (shape without batch; None here = the example's
    # shape), or a function returning None to list the parts
    summary_input: Callable[[Config, DataSpec], tuple[int, ...] | None] | None = None
    # new examples: (model, z (N, model.latent_dim), labels or None) -> images in [0, 1]
    generate: Callable[[nn.Module, Tensor, Tensor | None], Tensor] | None = None
    # raw inputs (e.g. images (N, H, W) in [0, 1]) as the model reads them (predict, tours)
    model_input: Callable[[Config, Tensor], Tensor] | None = None
    # loss(model(x, lengths), y) of one batch, for inspection (gradients through time)
    loss: Callable[[Tensor, Tensor], Tensor] | None = None

    def dataset_names(self) -> tuple[str, ...]:
        return tuple(self.datasets()) if callable(self.datasets) else tuple(self.datasets)

    def uses(self, key: str) -> bool:
        return key in COMMON_KEYS or key in self.keys


def keyset(names: str) -> frozenset[str]:
    """``keyset("model.hidden_size train.beta")``: a family's keys from one string."""
    return frozenset(names.split())


_REGISTRY: dict[str, Family] = {}


def registry() -> dict[str, Family]:
    """``{name: Family}`` of every module of this package that defines ``FAMILY``."""
    if not _REGISTRY:
        found = {}
        for info in pkgutil.iter_modules(__path__):
            if info.name.startswith("_"):
                continue
            module = importlib.import_module(f"{__name__}.{info.name}")
            family = getattr(module, "FAMILY", None)
            if isinstance(family, Family):
                found[family.name] = family
        _REGISTRY.update(sorted(found.items()))
    return _REGISTRY


def register(family: Family) -> Family:
    """Add ``family`` to the registry (a family defined outside this package, e.g. in a test
    or a plugin); a name already taken is refused."""
    families = registry()
    if family.name in families:
        raise ValueError(f"family {family.name!r} is already registered")
    families[family.name] = family
    return family


def unregister(name: str) -> None:
    """Remove a family added with :func:`register`."""
    registry().pop(name, None)


def names() -> tuple[str, ...]:
    return tuple(registry())


def get(name: str) -> Family:
    """The family called ``name``; :class:`ConfigError` naming the known ones otherwise."""
    families = registry()
    if name not in families:
        raise ConfigError(f"`model.family` must be one of {', '.join(families)}; got {name!r}")
    return families[name]


def all_kinds() -> tuple[str, ...]:
    return tuple(dict.fromkeys(k for f in registry().values() for k in f.kinds))


def all_datasets() -> tuple[str, ...]:
    return tuple(dict.fromkeys(d for f in registry().values() for d in f.dataset_names()))


def check_family(cfg: Config) -> None:
    """The family's part of :func:`~rnnlab.training.config.check_config`."""
    family, t = get(cfg.model.family), cfg.train
    name = family.name
    if cfg.model.kind not in family.kinds:
        raise ConfigError(
            f"`model.kind` for family {name!r} must be one of {', '.join(family.kinds)}, "
            f"got {cfg.model.kind!r}"
        )
    datasets = family.dataset_names()
    if cfg.data.dataset not in datasets:
        raise ConfigError(
            f"`data.dataset` for family {name!r} must be one of {', '.join(datasets)}, "
            f"got {cfg.data.dataset!r}"
        )
    unused = [k for k in changed_keys(cfg) if not family.uses(k)]
    if unused:
        raise ConfigError(
            f"`{unused[0]}` is not used by family {name!r} (it would be ignored); unset it"
        )
    if not family.monitor and (t.patience or t.schedule == "plateau"):
        raise ConfigError(
            f"family {name!r} has no single loss to monitor: `train.patience` must be 0 and "
            f"`train.schedule` not plateau, got {t.patience!r} and {t.schedule!r}"
        )
    if t.monitor == "accuracy" and "classes" not in family.supports:
        raise ConfigError(
            f"`train.monitor=accuracy` needs a family that reports accuracy (one with class "
            f"logits); family {name!r} does not: use `train.monitor=loss`"
        )
    if t.precision != "fp32" and "precision" not in family.supports:
        with_precision = [f.name for f in registry().values() if "precision" in f.supports]
        raise ConfigError(
            f"`train.precision={t.precision}` applies to families {', '.join(with_precision)}; "
            f"family {name!r} trains in fp32"
        )
    if family.check is not None:
        family.check(cfg)


from ._common import GAN  # noqa: E402, F401  (the GAN container, for code that loads GAN runs)
