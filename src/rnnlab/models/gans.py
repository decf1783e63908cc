"""GAN generators and discriminators: the chapter's MLP GAN, DCGAN, conditional variants and
minibatch discrimination. ``VAEGAN`` lives in ``vaegan.py``.

- ``MLPGenerator`` / ``MLPDiscriminator``: Listing 5.5 (``keras_create_gan.py``): G is
  Dense(128) -> LeakyReLU(0.01) -> Dense(H*W*C, tanh) -> Reshape; D is Flatten -> Dense(128)
  -> LeakyReLU(0.01) -> Dense(1, sigmoid). Our D returns the *logit* of that last unit and
  applies the sigmoid only in ``.prob()``: the losses then use BCE-with-logits, which equals
  Keras's ``binary_crossentropy`` on ``sigmoid(logit)`` but does not saturate to log(0).
- ``DCGANGenerator`` / ``DCGANDiscriminator``: Radford et al. 2016: transposed convolutions
  up-sample in G, stride-2 convolutions down-sample in D, no pooling, BatchNorm (not on G's
  output or D's input), ReLU in G with tanh output, LeakyReLU(0.2) in D.
- Conditioning (Mirza & Osindero 2014): with ``n_classes > 0`` a label embedding is
  concatenated to G's noise and to D's input (MLP) or D's convolutional features (DCGAN).
- ``MinibatchDiscrimination`` (Salimans et al. 2016, section 3.2), an option on both D's.

Every discriminator has ``features(x, labels)`` (the representation before its last linear
layer, used by VAE-GAN's feature-space reconstruction) and ``forward(x, labels)`` -> logits
of shape ``(B,)``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class MinibatchDiscrimination(nn.Module):
    r"""Minibatch discrimination (Salimans et al. 2016, section 3.2).

    ``f`` (B, A) is projected by a tensor T to ``M_i`` (n_kernels, kernel_dim); for each kernel
    ``b``, :math:`c_b(x_i, x_j) = \exp(-\|M_{i,b} - M_{j,b}\|_{L_1})` and
    :math:`o(x_i)_b = \sum_{j \ne i} c_b(x_i, x_j)` (self excluded, so each value lies in
    ``[0, B-1]``; ``B-1`` when all samples are identical). Returns ``[f, o(f)]`` of shape
    ``(B, in_features + n_kernels)``, letting D see how alike the samples of a batch are.

    The pairwise distances come from ``torch.cdist(p=1)`` per kernel, a ``(K, B, B)`` tensor;
    no ``(B, B, K, D)`` difference tensor is built.

    **Data-dependent scale** (``data_init=True``; off by default). Salimans et al.'s public
    code rescales the kernel on a first batch so that the distances start at order 1. Here the
    first forward pass in training mode (with ``B >= 2``) measures, for each kernel ``b``, the
    mean nearest-neighbour distance

    .. math:: \bar d_b = \frac{1}{B} \sum_i \min_{j \ne i} \|M_{i,b} - M_{j,b}\|_{L_1}

    and multiplies T's ``kernel_dim`` columns of kernel ``b`` by :math:`s_b = 1 / \bar d_b`.
    Distances are linear in T, so after this each kernel's mean nearest-neighbour distance on
    that batch is exactly 1. The factors are kept in the buffer ``init_scale`` (K,), and the
    buffer ``initialised`` records that it was done; both are in ``state_dict``, so a loaded
    checkpoint is not rescaled again. A state dict saved before these buffers existed loads as
    already initialised (its T is a trained kernel).

    It is off by default because on the MLP GANs of docs/results/generative.md it did not
    help: with T at std 0.1 the nearest-neighbour distances there are already 0.1-0.4 (so
    :math:`c_b` is far from 0), the scale multiplies them by about 3, and in 4 of 4 paired
    runs G took longer to leave the noise phase. Off, the layer computes what it always did.
    """

    def __init__(
        self, in_features: int, n_kernels: int, kernel_dim: int, data_init: bool = False
    ) -> None:
        super().__init__()
        self.in_features, self.n_kernels, self.kernel_dim = in_features, n_kernels, kernel_dim
        self.T = nn.Parameter(torch.randn(in_features, n_kernels * kernel_dim) * 0.1)
        self.register_buffer("init_scale", torch.ones(n_kernels))
        self.register_buffer("initialised", torch.tensor(not data_init))
        self._initialised = not data_init  # Python mirror: no device sync on every forward

    @property
    def out_features(self) -> int:
        return self.in_features + self.n_kernels

    def _l1(self, m: Tensor) -> Tensor:
        """(B, K, D) -> pairwise L1 distances per kernel, (K, B, B)."""
        mk = m.transpose(0, 1).contiguous()  # (K, B, D)
        return torch.cdist(mk, mk, p=1.0)

    @torch.no_grad()
    def _data_init(self, f: Tensor) -> None:
        b = f.shape[0]
        m = (f.float() @ self.T.float()).reshape(b, self.n_kernels, self.kernel_dim)
        l1 = self._l1(m)  # (K, B, B)
        l1 = l1 + torch.diag(l1.new_full((b,), math.inf))  # exclude j = i
        nn_mean = l1.min(dim=2).values.mean(dim=1)  # (K,) mean nearest-neighbour distance
        scale = 1.0 / nn_mean.clamp_min(1e-12)
        self.T.mul_(scale.repeat_interleave(self.kernel_dim).to(self.T.dtype))
        self.init_scale.copy_(scale)
        self.initialised.fill_(True)
        self._initialised = True

    def forward(self, f: Tensor) -> Tensor:
        if f.dim() != 2 or f.shape[1] != self.in_features:
            raise ValueError(f"`f` must be (B, {self.in_features}); got {tuple(f.shape)}")
        if self.training and not self._initialised and f.shape[0] >= 2:
            self._data_init(f.detach())
        m = (f @ self.T).reshape(-1, self.n_kernels, self.kernel_dim)  # (B, K, D)
        c = torch.exp(-self._l1(m))  # (K, B, B)
        o = c.sum(2).transpose(0, 1) - 1.0  # (B, K), minus the self term exp(0)
        return torch.cat([f, o], dim=1)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, *args) -> None:
        for name, fill in (("init_scale", torch.ones(self.n_kernels)), ("initialised", None)):
            if prefix + name not in state_dict and prefix + "T" in state_dict:
                # saved before the data-dependent scale existed: T is already trained
                state_dict[prefix + name] = torch.tensor(True) if fill is None else fill
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, *args)
        self._initialised = bool(self.initialised)


class _Conditioning(nn.Module):
    """Optional label embedding (``n_classes = 0``: unconditional)."""

    def _init_labels(self, n_classes: int, embed_dim: int) -> int:
        self.n_classes = n_classes
        self.embed = nn.Embedding(n_classes, embed_dim) if n_classes > 0 else None
        return embed_dim if n_classes > 0 else 0

    def _cat_label(self, h: Tensor, labels: Tensor | None) -> Tensor:
        if self.embed is None:
            if labels is not None:
                raise ValueError("`labels` given to an unconditional model (n_classes=0)")
            return h
        if labels is None or labels.shape != (h.shape[0],):
            got = None if labels is None else tuple(labels.shape)
            raise ValueError(f"`labels` must be ({h.shape[0]},) class ids; got {got}")
        return torch.cat([h, self.embed(labels)], dim=1)


class _Discriminator(_Conditioning):
    """What both discriminators share: ``features`` (each its own), then optional minibatch
    discrimination, then the ``head`` Linear to one logit."""

    minibatch: MinibatchDiscrimination | None
    head: nn.Linear

    def features(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        raise NotImplementedError

    def _init_head(self, width: int, minibatch: tuple | None) -> None:
        """The head on ``width`` features, after ``MinibatchDiscrimination(width, *minibatch)``."""
        self.minibatch = MinibatchDiscrimination(width, *minibatch) if minibatch else None
        self.head = nn.Linear(self.minibatch.out_features if minibatch else width, 1)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        f = self.features(x, labels)
        if self.minibatch is not None:
            f = self.minibatch(f)
        return self.head(f).squeeze(1)  # logits (B,)

    def prob(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """D(x) = sigmoid(logit): the Keras model's sigmoid output."""
        return torch.sigmoid(self(x, labels))


def _check_z(z: Tensor, z_dim: int) -> None:
    if z.dim() != 2 or z.shape[1] != z_dim:
        raise ValueError(f"`z` must be (B, {z_dim}); got {tuple(z.shape)}")


class MLPGenerator(_Conditioning):
    """Listing 5.5's generator: z -> [Linear -> LeakyReLU(0.01)]* -> Linear -> tanh -> image."""

    def __init__(
        self,
        z_dim: int,
        image_shape: tuple[int, ...] = (1, 28, 28),
        hidden: tuple[int, ...] = (128,),
        negative_slope: float = 0.01,
        n_classes: int = 0,
        embed_dim: int = 10,
    ) -> None:
        super().__init__()
        self.z_dim, self.image_shape = z_dim, tuple(image_shape)
        width = z_dim + self._init_labels(n_classes, embed_dim)
        layers: list[nn.Module] = []
        for h in hidden:
            layers += [nn.Linear(width, h), nn.LeakyReLU(negative_slope)]
            width = h
        layers += [nn.Linear(width, math.prod(self.image_shape)), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        _check_z(z, self.z_dim)
        return self.net(self._cat_label(z, labels)).reshape(z.shape[0], *self.image_shape)


class MLPDiscriminator(_Discriminator):
    """Listing 5.5's discriminator: Flatten -> [Linear -> LeakyReLU(0.01)]* -> Linear -> logit.

    ``minibatch=(n_kernels, kernel_dim)`` inserts ``MinibatchDiscrimination`` before the head;
    ``(n_kernels, kernel_dim, True)`` also turns on its data-dependent kernel scale.
    """

    def __init__(
        self,
        image_shape: tuple[int, ...] = (1, 28, 28),
        hidden: tuple[int, ...] = (128,),
        negative_slope: float = 0.01,
        n_classes: int = 0,
        embed_dim: int = 10,
        minibatch: tuple[int, int] | tuple[int, int, bool] | None = None,
    ) -> None:
        super().__init__()
        self.image_shape = tuple(image_shape)
        width = math.prod(self.image_shape) + self._init_labels(n_classes, embed_dim)
        layers: list[nn.Module] = []
        for h in hidden:
            layers += [nn.Linear(width, h), nn.LeakyReLU(negative_slope)]
            width = h
        self.body = nn.Sequential(*layers)
        self._init_head(width, minibatch)

    def features(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        if x[0].numel() != math.prod(self.image_shape):
            raise ValueError(f"`x` must be (B, *{self.image_shape}); got {tuple(x.shape)}")
        return self.body(self._cat_label(x.reshape(x.shape[0], -1), labels))


def _check_size(image_size: int, n_scale: int) -> int:
    if n_scale < 1 or image_size % (2**n_scale) != 0:
        raise ValueError(
            f"`image_size` must be divisible by 2**n_layers = {2**n_scale}; got {image_size}"
        )
    return image_size // 2**n_scale


class DCGANGenerator(_Conditioning):
    """DCGAN generator (Radford et al. 2016) for ``(channels, S, S)`` images.

    z -> Linear -> (base * 2**(n-1), S/2**n, S/2**n) -> n ConvTranspose2d(4, stride 2) blocks,
    each doubling the size and halving the channels, the last to ``channels`` with tanh.
    28x28: ``n_layers=2`` (7 -> 14 -> 28); 8x8: ``n_layers=2`` (2 -> 4 -> 8); 32x32: 3 or 4.
    """

    def __init__(
        self,
        z_dim: int,
        channels: int = 1,
        image_size: int = 28,
        base_channels: int = 64,
        n_layers: int = 2,
        n_classes: int = 0,
        embed_dim: int = 10,
    ) -> None:
        super().__init__()
        self.z_dim = z_dim
        s0 = _check_size(image_size, n_layers)
        c0 = base_channels * 2 ** (n_layers - 1)
        self._start = (c0, s0, s0)
        self.project = nn.Sequential(
            nn.Linear(z_dim + self._init_labels(n_classes, embed_dim), c0 * s0 * s0),
            nn.Unflatten(1, self._start),  # (c0, s0, s0)
            nn.BatchNorm2d(c0),
            nn.ReLU(),
        )
        blocks: list[nn.Module] = []
        c = c0
        for _ in range(n_layers - 1):
            blocks += [
                nn.ConvTranspose2d(c, c // 2, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(c // 2),
                nn.ReLU(),
            ]  # (c/2, 2x the size)
            c //= 2
        blocks += [nn.ConvTranspose2d(c, channels, 4, stride=2, padding=1), nn.Tanh()]
        self.net = nn.Sequential(*blocks)  # (channels, image_size, image_size)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        _check_z(z, self.z_dim)
        return self.net(self.project(self._cat_label(z, labels)))


class DCGANDiscriminator(_Discriminator):
    """DCGAN discriminator (Radford et al. 2016): ``n_layers`` Conv2d(4, stride 2) blocks with
    LeakyReLU(0.2), BatchNorm on all but the first, no pooling; then flatten -> logit.

    ``features(x)`` is the last conv block's output, flattened (for VAE-GAN, Dis_l of
    Larsen et al. 2016). ``minibatch=(n_kernels, kernel_dim)`` adds minibatch discrimination
    (``(n_kernels, kernel_dim, True)``: with its data-dependent kernel scale).
    """

    def __init__(
        self,
        channels: int = 1,
        image_size: int = 28,
        base_channels: int = 64,
        n_layers: int = 2,
        n_classes: int = 0,
        embed_dim: int = 10,
        minibatch: tuple[int, int] | tuple[int, int, bool] | None = None,
    ) -> None:
        super().__init__()
        self.image_shape = (channels, image_size, image_size)
        s = _check_size(image_size, n_layers)
        blocks: list[nn.Module] = []
        c_in, c = channels, base_channels
        for i in range(n_layers):
            blocks.append(nn.Conv2d(c_in, c, 4, stride=2, padding=1, bias=i == 0))
            if i > 0:
                blocks.append(nn.BatchNorm2d(c))
            blocks.append(nn.LeakyReLU(0.2))  # (c, image_size / 2**(i+1), ...)
            c_in, c = c, 2 * c
        blocks.append(nn.Flatten())  # (c_in * s * s,)
        self.body = nn.Sequential(*blocks)
        width = c_in * s * s + self._init_labels(n_classes, embed_dim)
        self._init_head(width, minibatch)

    def features(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        if tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(f"`x` must be (B, *{self.image_shape}); got {tuple(x.shape)}")
        return self._cat_label(self.body(x), labels)
