"""Time-series classifiers beside :class:`~rnnlab.models.classifiers.SequenceClassifier`: the
fully convolutional network, ResNet and MLP of Wang, Yan & Oates (2017, "Time series
classification from scratch with deep neural networks") and the LSTM-FCN of Karim et al.
(2017), the strongest plain deep baselines of Fawaz et al. (2019)'s UCR/UEA comparison.

FCN: three blocks ``Conv1d(k) -> BatchNorm -> ReLU`` with 128, 256, 128 filters and kernels
8, 5, 3 ("same" padding), then global average pooling over the valid steps and a Dense
layer. LSTM-FCN concatenates the FCN's pooled features with the last output of an LSTM
branch (dropout before the concatenation, 0.8 in the paper) and classifies the concatenation.
ResNet: three residual blocks, each the FCN's three ``Conv1d -> BatchNorm`` layers (kernels
8, 5, 3, ReLU after the first two) with ``F`` = 64, 128, 128 filters, added to a shortcut
(``Conv1d(1) -> BatchNorm`` where the width changes, BatchNorm alone where it does not), then
ReLU; ``h_out = relu(BN(conv3(relu(BN(conv2(relu(BN(conv1(h)))))))) + shortcut(h))``; then
the same masked pooling and Dense layer.
MLP: the series flattened to ``T * C`` values, dropout 0.1, three ``Dense(500) -> ReLU``
layers with dropout 0.2, 0.2, 0.3 after them, then the Dense classifier.
Encoder (Serrà, Pascual & Karatzoglou 2018, "Towards a universal neural network encoder for
time series"): three blocks ``Conv1d -> InstanceNorm -> PReLU -> Dropout(0.2)`` with 128,
256, 512 filters and kernels 5, 11, 21, the first two followed by ``MaxPool(2)``; then
attention pooling: the first 256 channels are values, the softmax over time of the other 256
their weights, ``a_c = sum_t softmax_t(h_{256+c}) h_c``; then ``Dense(256) -> sigmoid ->
LayerNorm`` and the Dense classifier.
Inception (Ismail Fawaz et al. 2020, "InceptionTime: finding AlexNet for time series
classification"): six Inception modules, each a 1x1 "bottleneck" convolution to 32 channels
(skipped on a univariate input), three "same" convolutions of it with kernels 40, 20, 10 and
a ``MaxPool(3, stride 1) -> Conv1d(1)`` branch of the module's input, 32 filters each,
concatenated (128) -> BatchNorm -> ReLU; a residual shortcut ``Conv1d(1) -> BatchNorm``
around every three modules; then the masked pooling and Dense layer. InceptionTime is the
mean of five such networks' probabilities (``rnnlab ensemble``; ``benchmarks/ucr_cv.py
--ensemble 5``).
Here the LSTM reads the series along time (the paper's "dimension shuffle", one step of ``T``
features, fits only equal-length univariate series; ``shuffle=True`` selects it).

Inputs ``x (B, T, C)`` with optional ``lengths (B,)``: padded steps are zeroed before each
convolution and left out of the pooling, so a padded sequence scores as its unpadded self
up to the batch statistics of BatchNorm in training.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab.layers import LSTM

__all__ = ["FCN", "LSTMFCN", "MLP", "Encoder", "Inception", "ResNet"]

FILTERS = (128, 256, 128)
KERNELS = (8, 5, 3)
RESNET_FILTERS = (64, 128, 128)


def _valid(x: Tensor, lengths: Tensor | None) -> Tensor | None:
    if lengths is None:
        return None
    return (torch.arange(x.shape[1], device=x.device) < lengths.to(x.device)[:, None])[:, None]


def _same(conv: nn.Conv1d, h: Tensor) -> Tensor:
    """``conv`` with "same" padding: (k - 1) // 2 zeros before, k // 2 after."""
    k = conv.kernel_size[0]
    return conv(F.pad(h, ((k - 1) // 2, k // 2)))


def _pool(h: Tensor, mask: Tensor | None) -> Tensor:
    """Global average pooling of ``h (B, F, T)`` over the valid steps: ``(B, F)``."""
    if mask is None:
        return h.mean(-1)
    return (h * mask).sum(-1) / mask.sum(-1).clamp_min(1)


class _ConvFeatures(nn.Module):
    """The FCN body: ``(B, T, C) -> (B, FILTERS[-1])`` (masked global average pooling)."""

    def __init__(self, channels: int, filters=FILTERS, kernels=KERNELS) -> None:
        super().__init__()
        blocks, size = [], channels
        for f, k in zip(filters, kernels, strict=True):
            blocks.append(nn.ModuleList([nn.Conv1d(size, f, k),
                                         nn.BatchNorm1d(f)]))  # fmt: skip
            size = f
        self.blocks = nn.ModuleList(blocks)
        self.output_size = size

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        mask = _valid(x, lengths)  # (B, 1, T) or None
        h = x.transpose(1, 2)  # (B, C, T)
        for conv, norm in self.blocks:
            if mask is not None:
                h = h * mask
            h = torch.relu(norm(_same(conv, h)))
        return _pool(h, mask)


class FCN(nn.Module):
    """Wang et al. (2017)'s FCN: logits ``(B, num_classes)``."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.features = _ConvFeatures(channels)
        self.dense = nn.Linear(self.features.output_size, num_classes)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        return self.dense(self.features(x, lengths))


class LSTMFCN(nn.Module):
    """Karim et al. (2017)'s LSTM-FCN: ``[LSTM(x) -> dropout ; FCN(x)] -> Dense``."""

    def __init__(
        self,
        channels: int,
        num_classes: int,
        hidden_size: int = 8,
        dropout: float = 0.8,
        *,
        shuffle: bool = False,
        steps: int | None = None,
    ) -> None:
        super().__init__()
        if shuffle and (channels != 1 or steps is None):
            raise ValueError(
                "`shuffle=True` reads a univariate series as one step of T values: it needs "
                f"channels == 1 and `steps`, got {channels}, {steps}"
            )
        self.shuffle = shuffle
        self.lstm = LSTM(steps if shuffle else channels, hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.features = _ConvFeatures(channels)
        self.dense = nn.Linear(hidden_size + self.features.output_size, num_classes)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        if self.shuffle:
            h = self.lstm(x.transpose(1, 2))  # (B, 1, T): one step of T features
        else:
            h = self.lstm(x, lengths)
        return self.dense(torch.cat([self.dropout(h), self.features(x, lengths)], dim=-1))


class _ResidualBlock(nn.Module):
    """Three "same" convolutions (kernels 8, 5, 3) with BatchNorm plus a shortcut:
    ``(B, C_in, T) -> (B, filters, T)``."""

    def __init__(self, size: int, filters: int) -> None:
        super().__init__()
        sizes = (size, filters, filters)
        self.convs = nn.ModuleList(
            nn.Conv1d(c, filters, k) for c, k in zip(sizes, KERNELS, strict=True)
        )
        self.norms = nn.ModuleList(nn.BatchNorm1d(filters) for _ in KERNELS)
        self.project = nn.Conv1d(size, filters, 1) if size != filters else None
        self.short_norm = nn.BatchNorm1d(filters)

    def forward(self, h: Tensor, mask: Tensor | None) -> Tensor:
        out = h
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
            if mask is not None:
                out = out * mask
            out = norm(_same(conv, out))
            if i < len(self.convs) - 1:
                out = torch.relu(out)
        short = self.project(h) if self.project is not None else h
        return torch.relu(out + self.short_norm(short))


class ResNet(nn.Module):
    """Wang et al. (2017)'s ResNet as Fawaz et al. (2019) run it: logits ``(B, num_classes)``
    from ``x (B, T, C)`` and optional ``lengths (B,)``."""

    def __init__(self, channels: int, num_classes: int, filters=RESNET_FILTERS) -> None:
        super().__init__()
        sizes = (channels, *filters[:-1])
        self.blocks = nn.ModuleList(
            _ResidualBlock(c, f) for c, f in zip(sizes, filters, strict=True)
        )
        self.dense = nn.Linear(filters[-1], num_classes)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        mask = _valid(x, lengths)  # (B, 1, T) or None
        h = x.transpose(1, 2)  # (B, C, T)
        for block in self.blocks:
            h = block(h, mask)
        return self.dense(_pool(h, mask))


class MLP(nn.Module):
    """Wang et al. (2017)'s MLP: logits ``(B, num_classes)`` from ``x (B, T, C)`` with ``T <=
    steps`` (shorter series are zero-padded to ``steps``) and optional ``lengths (B,)``.

    ``h0 = dropout_0.1(flatten(x))``; ``h_i = dropout_p_i(relu(W_i h_{i-1} + b_i))`` for
    ``i = 1..3``, 500 units, ``p = 0.2, 0.2, 0.3``; logits ``W_4 h_3 + b_4``. Steps past a
    sequence's length are zeroed first, so a padded sequence scores as its unpadded self.
    """

    def __init__(self, channels: int, num_classes: int, steps: int, units: int = 500) -> None:
        super().__init__()
        self.steps, self.channels = steps, channels
        layers: list[nn.Module] = [nn.Flatten(), nn.Dropout(0.1)]
        size = steps * channels
        for p in (0.2, 0.2, 0.3):
            layers += [nn.Linear(size, units), nn.ReLU(), nn.Dropout(p)]
            size = units
        self.body = nn.Sequential(*layers)
        self.dense = nn.Linear(size, num_classes)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        if x.shape[1] > self.steps or x.shape[2] != self.channels:
            raise ValueError(
                f"MLP expected x of (B, <= {self.steps}, {self.channels}), got {tuple(x.shape)}"
            )
        mask = _valid(x, lengths)  # (B, 1, T) or None
        if mask is not None:
            x = x * mask.transpose(1, 2)
        x = F.pad(x, (0, 0, 0, self.steps - x.shape[1]))
        return self.dense(self.body(x))


def _instance_norm(h: Tensor, mask: Tensor | None, eps: float = 1e-5) -> Tensor:
    """Each series' channels standardised over their valid steps: ``h (B, F, T)``."""
    if mask is None:
        mean, var = h.mean(-1, keepdim=True), h.var(-1, unbiased=False, keepdim=True)
    else:
        n = mask.sum(-1, keepdim=True).clamp_min(1)
        mean = (h * mask).sum(-1, keepdim=True) / n
        var = (((h - mean) * mask) ** 2).sum(-1, keepdim=True) / n
    return (h - mean) / torch.sqrt(var + eps)


class Encoder(nn.Module):
    """Serrà et al. (2018)'s Encoder as Fawaz et al. (2019) run it: logits ``(B, num_classes)``
    from ``x (B, T, C)`` and optional ``lengths (B,)`` (module doc for the layers).

    Instance normalisation is per channel over a series' valid steps with a learnt scale and
    shift per channel (Ulyanov et al. 2016, as the paper describes it; Fawaz et al.'s Keras
    code normalises over steps and channels together). ``MaxPool(2)`` drops an odd last step
    and halves the lengths (``L // 2``); padded steps are zeroed before every convolution and
    get no attention weight, so a padded series scores as its unpadded self. Series need at
    least 4 steps (two poolings)."""

    FILTERS, KERNELS = (128, 256, 512), (5, 11, 21)

    def __init__(self, channels: int, num_classes: int, dropout: float = 0.2) -> None:
        super().__init__()
        sizes = (channels, *self.FILTERS[:-1])
        self.convs = nn.ModuleList(
            nn.Conv1d(c, f, k) for c, f, k in zip(sizes, self.FILTERS, self.KERNELS, strict=True)
        )
        self.scales = nn.ParameterList(nn.Parameter(torch.ones(f, 1)) for f in self.FILTERS)
        self.shifts = nn.ParameterList(nn.Parameter(torch.zeros(f, 1)) for f in self.FILTERS)
        self.prelus = nn.ModuleList(nn.PReLU(f) for f in self.FILTERS)
        self.dropout = nn.Dropout(dropout)
        half = self.FILTERS[-1] // 2
        self.project = nn.Linear(half, 256)
        self.norm = nn.LayerNorm(256)
        self.dense = nn.Linear(256, num_classes)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        h = x.transpose(1, 2)  # (B, C, T)
        for i, conv in enumerate(self.convs):
            mask = _valid(h.transpose(1, 2), lengths)  # (B, 1, T) or None
            if mask is not None:
                h = h * mask
            h = _instance_norm(_same(conv, h), mask) * self.scales[i] + self.shifts[i]
            h = self.dropout(self.prelus[i](h))
            if i < len(self.convs) - 1:
                h = F.max_pool1d(h, 2)
                lengths = None if lengths is None else (lengths // 2).clamp_min(1)
        mask = _valid(h.transpose(1, 2), lengths)
        values, scores = h.chunk(2, dim=1)  # (B, 256, T) each
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        pooled = (values * torch.softmax(scores, dim=-1)).sum(-1)  # (B, 256)
        return self.dense(self.norm(torch.sigmoid(self.project(pooled))))


class _InceptionModule(nn.Module):
    """``(B, C_in, T) -> (B, 4 * filters, T)``: ``relu(BN([conv_40(b), conv_20(b), conv_10(b),
    conv_1(maxpool_3(h))]))`` with ``b = bottleneck(h)`` (``h`` itself when ``C_in == 1``)."""

    def __init__(self, size: int, filters: int = 32, kernels=(40, 20, 10)) -> None:
        super().__init__()
        self.bottleneck = nn.Conv1d(size, filters, 1, bias=False) if size > 1 else None
        inner = filters if size > 1 else size
        self.convs = nn.ModuleList(nn.Conv1d(inner, filters, k, bias=False) for k in kernels)
        self.pool_conv = nn.Conv1d(size, filters, 1, bias=False)
        self.norm = nn.BatchNorm1d(filters * (len(kernels) + 1))

    def forward(self, h: Tensor, mask: Tensor | None) -> Tensor:
        b = self.bottleneck(h) if self.bottleneck is not None else h
        if mask is not None:  # zeros past the length; -inf there for the max-pool
            b = b * mask
            pooled = F.max_pool1d(h.masked_fill(~mask, float("-inf")), 3, 1, padding=1)
            pooled = pooled.masked_fill(~mask, 0.0)
        else:
            pooled = F.max_pool1d(h, 3, 1, padding=1)
        branches = [_same(conv, b) for conv in self.convs] + [self.pool_conv(pooled)]
        return torch.relu(self.norm(torch.cat(branches, dim=1)))


class Inception(nn.Module):
    """One network of Ismail Fawaz et al. (2020)'s InceptionTime: logits ``(B, num_classes)``
    from ``x (B, T, C)`` and optional ``lengths (B,)`` (module doc for the layers).

    ``depth`` modules with a shortcut around every three: ``h = relu(h + BN(conv_1(r)))``,
    ``r`` the input of the three. Padded steps are zeroed before every convolution and are
    ``-inf`` inside the max-pool, so a padded series scores as its unpadded self."""

    def __init__(self, channels: int, num_classes: int, depth: int = 6, filters: int = 32):
        super().__init__()
        width = 4 * filters
        self.blocks = nn.ModuleList(
            _InceptionModule(channels if i == 0 else width, filters) for i in range(depth)
        )
        self.shortcuts = nn.ModuleList(
            nn.Sequential(
                nn.Conv1d(channels if i == 0 else width, width, 1, bias=False),
                nn.BatchNorm1d(width),
            )  # fmt: skip
            for i in range(depth // 3)
        )
        self.dense = nn.Linear(width, num_classes)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        mask = _valid(x, lengths)  # (B, 1, T) or None
        h = x.transpose(1, 2)  # (B, C, T)
        if mask is not None:
            h = h * mask
        residual = h
        for i, module in enumerate(self.blocks):
            h = module(h, mask)
            if i % 3 == 2:
                short = self.shortcuts[i // 3](residual)
                h = torch.relu(h + short)  # padding is zeroed in the next module
                residual = h
        return self.dense(_pool(h, mask))
