"""Time-series classifiers beside :class:`~rnnlab.models.classifiers.SequenceClassifier`: the
fully convolutional network of Wang, Yan & Oates (2017, "Time series classification from
scratch with deep neural networks") and the LSTM-FCN of Karim et al. (2017), the strongest
plain deep baselines of Fawaz et al. (2019)'s UCR/UEA comparison.

FCN: three blocks ``Conv1d(k) -> BatchNorm -> ReLU`` with 128, 256, 128 filters and kernels
8, 5, 3 ("same" padding), then global average pooling over the valid steps and a Dense
layer. LSTM-FCN concatenates the FCN's pooled features with the last output of an LSTM
branch (dropout before the concatenation, 0.8 in the paper) and classifies the concatenation.
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

__all__ = ["FCN", "LSTMFCN"]

FILTERS = (128, 256, 128)
KERNELS = (8, 5, 3)


def _valid(x: Tensor, lengths: Tensor | None) -> Tensor | None:
    if lengths is None:
        return None
    return (torch.arange(x.shape[1], device=x.device) < lengths.to(x.device)[:, None])[:, None]


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
            k = conv.kernel_size[0]  # "same": (k - 1) // 2 zeros before, k // 2 after
            h = torch.relu(norm(conv(F.pad(h, ((k - 1) // 2, k // 2)))))
        if mask is None:
            return h.mean(-1)
        return (h * mask).sum(-1) / mask.sum(-1).clamp_min(1)


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
