"""Helpers the family entries share: the image families' entry (:func:`image_family`) and
data view, the limit / validation split of tensor data, the recurrent-layer options of a
config, and the container a GAN trains as."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from rnnlab.data import DATASETS, load, synthetic_images

from ..config import Config, ConfigError
from . import Data, Family, keyset
from ._samples import GridWriter

__all__ = [
    "DCGAN_LAYERS", "IMAGE_DATASETS", "DataError", "GAN", "image_data", "image_family",
    "rnn_kwargs", "square", "tensor_data",
]  # fmt: skip

DCGAN_LAYERS = 2  # stride-2 blocks of DCGAN / VAE-GAN: 28 -> 14 -> 7, 8 -> 4 -> 2
VAL_SEED = 12345  # the validation split is the same for every run of a dataset


class DataError(ValueError):
    """Data that cannot be trained on (NaN, wrong family for the dataset, ...)."""


def IMAGE_DATASETS() -> tuple[str, ...]:  # noqa: N802 - a registry lookup, read like a constant
    """The image datasets of :data:`rnnlab.data.DATASETS`."""
    return tuple(DATASETS)


def tensor_data(
    cfg: Config, train: tuple, test: tuple, num_classes: int, source: str, info=None
) -> Data:
    """:class:`Data` from tensor tuples: the first ``data.limit`` training examples, then
    ``data.val_fraction`` of them held out (a fixed permutation, the same for every run)."""
    d = cfg.data
    if d.limit:
        train = tuple(t[: d.limit] for t in train)
    val = None
    if d.val_fraction > 0:
        order = torch.randperm(len(train[0]), generator=torch.Generator().manual_seed(VAL_SEED))
        n_val = max(1, int(len(order) * d.val_fraction))
        if n_val >= len(order):
            raise DataError(
                f"`data.val_fraction` {d.val_fraction} of {len(order)} training examples "
                "leaves none to train on"
            )
        val = tuple(t[order[:n_val]] for t in train)
        train = tuple(t[order[n_val:]] for t in train)
    return Data(train, val, test, num_classes, source, dict(info or {}))


def image_data(cfg: Config, dry_run: bool, to_input) -> Data:
    """An image dataset's train and test splits as ``(to_input(images), labels)``; with
    ``dry_run`` small synthetic images of the same shape (nothing is read from disk).
    ``info["image_shape"]`` is (H, W)."""
    d = cfg.data
    spec = DATASETS[d.dataset]
    if dry_run:
        k = len(spec.class_names)
        sets = [synthetic_images(n, spec.image_shape, k, seed=i) for i, n in ((0, 256), (1, 64))]
    else:
        sets = [load(d.dataset, split, root=d.data_dir) for split in ("train", "test")]
    for s in sets:
        if not torch.isfinite(s.images).all():
            raise DataError(f"{d.dataset} ({s.split}, {s.location}) holds NaN or inf pixels")
    train = (to_input(cfg, sets[0].images), sets[0].labels)
    test = (to_input(cfg, sets[1].images), sets[1].labels)
    source = f"{sets[0].name} ({sets[0].location})"
    info = {"image_shape": tuple(spec.image_shape), "class_names": tuple(spec.class_names)}
    return tensor_data(cfg, train, test, sets[0].num_classes, source, info)


def image_family(
    to_input: Callable[[Config, Tensor], Tensor], draw=None, *, signed: bool = False, **fields
) -> Family:
    """The entry of a family trained on the image datasets: each split is read by
    :func:`image_data` and ``to_input(cfg, images (N, H, W) in [0, 1])`` turns it into what the
    model reads, which is also the family's ``model_input`` (``predict`` and the tours feed raw
    images the same way). ``draw(model, x, y, n, rng) -> {name: images}`` makes the per-epoch
    sample grids (:class:`~._samples.GridWriter`; ``signed`` images live in [-1, 1]); the other
    ``fields`` are :class:`Family`'s."""
    if draw is not None:
        fields["samples"] = lambda cfg, data, folder: GridWriter(
            cfg, data, folder, draw, signed=signed
        )
    return Family(
        datasets=IMAGE_DATASETS,
        build_data=lambda cfg, dry_run: image_data(cfg, dry_run, to_input),
        model_input=to_input,
        **fields,
    )


def rnn_kwargs(cfg: Config) -> dict:
    """The recurrent-layer options of ``cfg.model`` (rnnlab.models.classifiers)."""
    m = cfg.model
    return {
        "num_layers": m.num_layers, "bidirectional": m.bidirectional, "dropout": m.dropout,
        "recurrent_dropout": m.recurrent_dropout, "layer_dropout": m.layer_dropout,
        "activation": m.activation, "implementation": m.implementation, "init": m.init,
    }  # fmt: skip


RNN_KEYS = keyset(
    "model.hidden_size model.num_layers model.bidirectional model.dropout "
    "model.recurrent_dropout model.layer_dropout model.activation model.implementation "
    "model.init model.chrono_tmax"
)
SIZE_KEYS = keyset("model.hidden_size model.num_layers")  # MLP widths and depth
IMAGE_GEN_KEYS = keyset("model.latent_dim model.base_channels train.samples")


def square(example: Tensor, what: str) -> int:
    side = example.shape[-1]
    if example.shape[-2] != side:
        raise ConfigError(f"{what} needs square images, got {tuple(example.shape[-2:])}")
    return side


class GAN(nn.Module):
    """The container a GAN trains as: ``generator`` and ``discriminator`` (one state dict)."""

    def __init__(self, generator: nn.Module, discriminator: nn.Module, z_dim: int, n_classes: int):
        super().__init__()
        self.generator, self.discriminator = generator, discriminator
        self.z_dim, self.n_classes = z_dim, n_classes

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.generator(z) if labels is None else self.generator(z, labels=labels)

    @property
    def latent_dim(self) -> int:
        """The noise size, under the name every generative model uses."""
        return self.z_dim

    def labels_of(self, batch) -> Tensor | None:
        return batch[1] if self.n_classes else None
