"""Classifiers and regressors the chapter trains: recurrent ones over sequences (Listing 5.2's
SimpleRNN -> Dense on MNIST rows, and its LSTM/GRU/bidirectional/stacked siblings), and a
small CNN and MLP over images (what the attack and robustness code attacks).

All return logits (softmax lives in the loss, ``F.cross_entropy``, as in torch); Listing
5.2's ``Activation('softmax')`` is applied by :meth:`SequenceClassifier.predict_proba`.
Recurrent models take ``(x, lengths=None)`` with ``x`` (B, T, I) batch-first.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from rnnlab.layers import GRU, LSTM, Dense, SimpleRNN, stacked
from rnnlab.utils import check_choice

__all__ = ["RECURRENT_KINDS", "CNNClassifier", "MLPClassifier", "SequenceClassifier",
           "SequenceRegressor", "SmallCNN", "recurrent_layers"]  # fmt: skip

RECURRENT_KINDS = {"simple_rnn": SimpleRNN, "lstm": LSTM, "gru": GRU, "bilstm": LSTM}


def recurrent_layers(
    kind: str,
    input_size: int,
    hidden_size: int,
    *,
    num_layers: int = 1,
    bidirectional: bool = False,
    dropout: float = 0.0,
    recurrent_dropout: float = 0.0,
    layer_dropout: float = 0.0,
    activation: str = "tanh",
    implementation: str = "auto",
    init: str = "keras",
) -> nn.Module:
    """One layer (``num_layers=1``), a :class:`Bidirectional` one, or a :class:`Stacked`
    pile. ``dropout``/``recurrent_dropout`` are each layer's Keras rates (one mask per
    sequence); ``layer_dropout`` sits between stacked layers. ``kind="bilstm"`` is LSTM with
    ``bidirectional=True``."""
    check_choice("kind", kind, sorted(RECURRENT_KINDS))
    stack = stacked(
        "lstm" if kind == "bilstm" else kind,
        input_size,
        hidden_size,
        num_layers,
        bidirectional=bidirectional or kind == "bilstm",
        dropout=layer_dropout,
        input_dropout=dropout,
        recurrent_dropout=recurrent_dropout,
        activation=activation,
        implementation=implementation,
        init=init,
    )
    return stack.layers[0] if num_layers == 1 else stack


class SequenceClassifier(nn.Module):
    """Recurrent layers -> (dropout) -> Dense(num_classes): logits (B, num_classes).

    ``SequenceClassifier("simple_rnn", 28, 256, 10, dropout=0.3)`` is Listing 5.2's model
    (72,960 + 2,570 parameters, as its printed summary says).
    """

    def __init__(
        self,
        kind: str,
        input_size: int,
        hidden_size: int,
        num_classes: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        *,
        layer_dropout: float = 0.0,
        head_dropout: float = 0.0,
        activation: str = "tanh",
        implementation: str = "auto",
        init: str = "keras",
    ) -> None:
        super().__init__()
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"`num_classes` must be an integer >= 2, got {num_classes!r}.")
        self.rnn = recurrent_layers(
            kind, input_size, hidden_size, num_layers=num_layers, bidirectional=bidirectional,
            dropout=dropout, recurrent_dropout=recurrent_dropout, layer_dropout=layer_dropout,
            activation=activation, implementation=implementation, init=init,
        )  # fmt: skip
        if head_dropout > 0:
            self.dropout = nn.Dropout(head_dropout)
        self.dense = Dense(self.rnn.output_size, num_classes)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        h = self.rnn(x, lengths)  # (B, D*H): each sequence's last valid output
        if hasattr(self, "dropout"):
            h = self.dropout(h)
        return self.dense(h)  # (B, num_classes)

    @torch.no_grad()
    def predict_proba(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        return torch.softmax(self(x, lengths), dim=-1)


class SequenceRegressor(nn.Module):
    """Recurrent layers -> Dense(output_size), for the adding problem: (B, output_size).

    :meth:`run` gives the prediction at every step and takes/returns the state, for
    truncated BPTT (``rnnlab.training.steps.tbptt_step``).
    """

    def __init__(
        self,
        kind: str,
        input_size: int,
        hidden_size: int,
        output_size: int = 1,
        num_layers: int = 1,
        **layer_kwargs,
    ) -> None:
        super().__init__()
        if layer_kwargs.get("bidirectional") or kind == "bilstm":
            raise ValueError("`kind`/`bidirectional`: a regressor reads forward only, got bilstm.")
        self.rnn = recurrent_layers(
            kind, input_size, hidden_size, num_layers=num_layers, **layer_kwargs
        )
        self.dense = Dense(self.rnn.output_size, output_size)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        return self.dense(self.rnn(x, lengths))

    def run(self, x: Tensor, state=None) -> tuple[Tensor, object]:
        """Predictions at every step (B, T, output_size) and the final state."""
        outputs, state = self.rnn.run(x, None, state)
        return self.dense(outputs), state


def _as_images(x: Tensor) -> Tensor:
    if x.dim() == 3:
        return x.unsqueeze(1)
    if x.dim() != 4:
        raise ValueError(f"`x` must be (B, H, W) or (B, C, H, W), got {tuple(x.shape)}.")
    return x


class CNNClassifier(nn.Module):
    """Two conv-ReLU-maxpool blocks, then Dense-ReLU-Dropout-Dense: logits (B, num_classes).

    Takes images (B, H, W) or (B, C, H, W); ``image_size`` must be divisible by 4.
    """

    def __init__(
        self,
        image_size: Sequence[int] = (28, 28),
        num_classes: int = 10,
        *,
        in_channels: int = 1,
        channels: Sequence[int] = (32, 64),
        hidden_size: int = 128,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        h, w = image_size
        if h % 4 or w % 4:
            raise ValueError(f"`image_size` must be divisible by 4, got {tuple(image_size)}.")
        c1, c2 = channels
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B,c1,H/2,W/2)
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, c2, H/4, W/4)
            nn.Flatten(),
        )  # fmt: skip
        self.head = nn.Sequential(
            nn.Linear(c2 * (h // 4) * (w // 4), hidden_size), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden_size, num_classes),
        )  # fmt: skip

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        return self.head(self.features(_as_images(x)))


class SmallCNN(nn.Module):
    """The small MNIST network of the adversarial-training literature: logits (B, num_classes).

    Conv(16, 4x4, stride 2) -> ReLU -> Conv(32, 4x4, stride 2) -> ReLU -> Dense(hidden) -> ReLU
    -> Dense(num_classes), the model of Wong & Kolter 2018 and of Wong, Rice & Kolter 2020
    ("Fast is better than free", their MNIST experiments, hidden = 100). Strided convolutions
    instead of pooling make it several times cheaper than :class:`CNNClassifier`, which is what
    lets PGD adversarial training run on a CPU. ``width`` multiplies every layer's size.
    """

    def __init__(
        self,
        image_size: Sequence[int] = (28, 28),
        num_classes: int = 10,
        *,
        in_channels: int = 1,
        hidden_size: int = 100,
        width: int = 1,
    ) -> None:
        super().__init__()
        h, w = image_size
        if h % 4 or w % 4:
            raise ValueError(f"`image_size` must be divisible by 4, got {tuple(image_size)}.")
        c1, c2 = 16 * width, 32 * width
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, c1, 4, stride=2, padding=1), nn.ReLU(),  # (B, c1, H/2, W/2)
            nn.Conv2d(c1, c2, 4, stride=2, padding=1), nn.ReLU(), nn.Flatten(),  # (B, c2*H*W/16)
            nn.Linear(c2 * (h // 4) * (w // 4), hidden_size * width), nn.ReLU(),
            nn.Linear(hidden_size * width, num_classes),
        )  # fmt: skip

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        return self.net(_as_images(x))


class MLPClassifier(nn.Module):
    """Flatten -> [Dense-ReLU-Dropout] x len(hidden_sizes) -> Dense: logits."""

    def __init__(
        self,
        image_size: Sequence[int] = (28, 28),
        num_classes: int = 10,
        *,
        hidden_sizes: Sequence[int] = (256, 256),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        size = int(torch.tensor(tuple(image_size)).prod())
        layers: list[nn.Module] = [nn.Flatten()]
        for hidden in hidden_sizes:
            layers += [nn.Linear(size, hidden), nn.ReLU(), nn.Dropout(dropout)]
            size = hidden
        layers.append(nn.Linear(size, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        return self.net(x.reshape(x.size(0), -1))
