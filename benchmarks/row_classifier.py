"""Row classifiers on MNIST-10k, rnnlab beside Keras 3 and beside plain torch, in one process.

Two pairs, each trained on the same data (MNIST-10k: the first 10,000 official training
images, read as 28 rows of 28 pixels; tested on the official 10,000) for the same epochs,
with the same thread count, their epochs interleaved (A1, B1, A2, B2, ...) so that drift
of a shared machine hits both sides alike:

1. The chapter's Listing 5.2 as Keras 3 code on the torch backend
   (``Sequential([SimpleRNN(256, dropout=0.3), Dense(10), Activation("softmax")])``,
   categorical cross-entropy, ``optimizer="sgd"`` i.e. lr 0.01 without momentum,
   ``batch_size=128``) beside rnnlab's ``listing-5-2`` preset (the same model and recipe,
   built by :func:`rnnlab.training.experiment.build_model` and trained by rnnlab's loop,
   :func:`rnnlab.training.loop.fit`, with the train step and optimizer `rnnlab train` builds).
   Goal: rnnlab >= 3x faster per epoch, test accuracy within 1 point.
   Beside it, the ceiling: Keras against a hand-written ``torch.nn.RNN`` script of the same
   listing (:class:`PlainTorchListing`). No library built on torch's kernels can beat that
   script by much, so its ratio to Keras bounds what rnnlab can reach (``--skip floor``).
2. A plain ``torch.nn.LSTM`` training script (LSTM(128) -> Dropout -> Linear, Adam with a
   one-cycle schedule, gradient-norm clipping at 1, batch 128: the recipe of the
   ``lstm-rows`` preset) beside rnnlab's ``lstm-rows`` preset on the same data.
   Goal: rnnlab's epoch within 1.10x of plain torch.

Seconds per epoch are the wall time of one training epoch (the test pass is not timed),
the median over epochs; accuracy is on the test set after the last epoch. Different
initial weights on the two sides make single-run accuracies differ by chance, most of all
after one or two epochs of plain SGD.

Run: ``KERAS_BACKEND=torch python benchmarks/row_classifier.py [--epochs 3]
[--lstm-epochs 3] [--threads 1] [--data-dir ../shared/datasets]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from rnnlab.data.datasets import load  # noqa: E402
from rnnlab.training.config import apply_overrides, load_preset  # noqa: E402
from rnnlab.training.experiment import _steps_for, build_model  # noqa: E402
from rnnlab.training.loop import Batches, Checkpointing, FitOptions, fit  # noqa: E402
from rnnlab.utils import seed_everything  # noqa: E402

try:  # the engine's optimizer module
    from rnnlab.training.optim import build_optimizer, build_schedule  # noqa: E402
except ImportError:  # older layout: both lived in experiment.py
    from rnnlab.training.experiment import OPTIMIZERS, build_schedule  # noqa: E402

    def build_optimizer(cfg, model):
        return OPTIMIZERS[cfg.train.optimizer](model.parameters(), cfg.train)


GOAL_KERAS, GOAL_TORCH = 3.0, 1.10


def mnist_rows(data_dir: str | None):
    train, test = (load("mnist", split, root=data_dir) for split in ("train", "test"))
    return (train.images, train.labels), (test.images, test.labels)


@torch.no_grad()
def accuracy(predict, x: torch.Tensor, y: torch.Tensor, batch: int = 1000) -> float:
    hits = sum(
        int((predict(x[i : i + batch]).argmax(-1) == y[i : i + batch]).sum())
        for i in range(0, len(x), batch)
    )
    return hits / len(x)


# ---------------------------------------------------------------- Keras 3: Listing 5.2
class KerasListing:
    """The chapter's Listing 5.2, as written (with the printed summary's 256 units)."""

    name = "Keras 3 (torch backend), Listing 5.2"

    def __init__(self, train, test, seed: int) -> None:
        import keras

        keras.utils.set_random_seed(seed)
        self.keras = keras
        self.x, self.y = train[0].numpy(), keras.utils.to_categorical(train[1].numpy(), 10)
        self.test = test
        self.model = keras.Sequential(
            [
                keras.Input(shape=(28, 28)),
                keras.layers.SimpleRNN(units=256, dropout=0.3),
                keras.layers.Dense(10),
                keras.layers.Activation("softmax"),
            ]
        )
        self.model.compile(loss="categorical_crossentropy", optimizer="sgd", metrics=["accuracy"])

    def epoch(self) -> None:
        self.model.fit(self.x, self.y, epochs=1, batch_size=128, verbose=0)

    def test_accuracy(self) -> float:
        x, y = self.test
        return accuracy(
            lambda b: torch.as_tensor(np.asarray(self.model(b.numpy(), training=False))), x, y
        )


# ---------------------------------------------------------------- rnnlab: a preset + its loop
class RnnlabPreset:
    """A preset's model and recipe, trained one epoch per call by rnnlab's loop."""

    def __init__(self, preset: str, train, test, seed: int, epochs: int) -> None:
        cfg = apply_overrides(
            load_preset(preset),
            ["--data.dataset=mnist", f"--train.epochs={epochs}", f"--train.seed={seed}"],
        )
        self.name = f"rnnlab `{preset}`"
        seed_everything(seed)
        self.model = build_model(cfg, train[0][0], 10)
        self.optimizer = build_optimizer(cfg, self.model)
        self.data = Batches(*train, batch_size=cfg.data.batch_size, seed=seed)
        self.scheduler, self.interval = build_schedule(cfg, self.optimizer, len(self.data))
        self.step = _steps_for(cfg)[0]  # the step `rnnlab train` uses (clipping bound)
        self.state, self.done, self.test = None, 0, test

    def epoch(self) -> None:
        self.done += 1
        self.state = fit(
            self.model,
            self.optimizer,
            self.data,
            train_step=self.step,
            epochs=self.done,
            checkpointing=Checkpointing(state=self.state),
            options=FitOptions(
                scheduler=self.scheduler, scheduler_interval=self.interval, log=None
            ),
        )

    def test_accuracy(self) -> float:
        self.model.eval()
        return accuracy(self.model, *self.test)


# ---------------------------------------------------------------- plain torch.nn scripts
class PlainTorchListing:
    """Listing 5.2 written by hand in torch: nn.RNN(28, 256, tanh) with Keras-style input
    dropout (one mask per sequence, rate 0.3), Linear(256, 10), SGD lr 0.01, batch 128."""

    name = "plain torch.nn.RNN script, Listing 5.2"

    def __init__(self, train, test, seed: int) -> None:
        torch.manual_seed(seed)
        self.x, self.y = train
        self.rnn, self.fc = nn.RNN(28, 256, batch_first=True), nn.Linear(256, 10)
        params = [*self.rnn.parameters(), *self.fc.parameters()]
        self.opt = torch.optim.SGD(params, lr=0.01)
        self.gen = torch.Generator().manual_seed(seed)
        self.test = test

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.rnn(x)[1][-1])

    def epoch(self) -> None:
        order = torch.randperm(len(self.x), generator=self.gen)
        for i in range(0, len(self.x), 128):
            idx = order[i : i + 128]
            x = self.x[idx]
            mask = torch.bernoulli(torch.full((len(x), 1, 28), 0.7)) / 0.7  # per sequence
            loss = F.cross_entropy(self(x * mask), self.y[idx])
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()

    def test_accuracy(self) -> float:
        with torch.no_grad():
            return accuracy(self, *self.test)


class PlainTorchLSTM(nn.Module):
    def __init__(self, hidden: int = 128, head_dropout: float = 0.1) -> None:
        super().__init__()
        self.lstm = nn.LSTM(28, hidden, batch_first=True)
        self.drop = nn.Dropout(head_dropout)
        self.fc = nn.Linear(hidden, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.lstm(x)
        return self.fc(self.drop(h[-1]))


class PlainTorch:
    """What a user writes by hand: nn.LSTM, Adam + OneCycleLR, clip_grad_norm_, batch 128."""

    name = "plain torch.nn.LSTM script"

    def __init__(self, train, test, seed: int, epochs: int, lr: float = 3e-3) -> None:
        torch.manual_seed(seed)
        self.x, self.y = train
        self.model = PlainTorchLSTM()
        self.opt = torch.optim.Adam(self.model.parameters(), lr)
        self.per_epoch = -(-len(self.x) // 128)
        self.sched = torch.optim.lr_scheduler.OneCycleLR(
            self.opt, max_lr=lr, total_steps=epochs * self.per_epoch
        )
        self.gen = torch.Generator().manual_seed(seed)
        self.test = test

    def epoch(self) -> None:
        self.model.train()
        order = torch.randperm(len(self.x), generator=self.gen)
        for i in range(0, len(self.x), 128):
            idx = order[i : i + 128]
            loss = F.cross_entropy(self.model(self.x[idx]), self.y[idx])
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
            self.opt.step()
            self.sched.step()

    def test_accuracy(self) -> float:
        self.model.eval()
        return accuracy(self.model, *self.test)


def race(a, b, epochs: int) -> dict:
    """Interleave the two sides' epochs; median seconds per epoch and final test accuracy."""
    times = {a.name: [], b.name: []}
    for e in range(epochs):
        for side in (a, b) if e % 2 == 0 else (b, a):  # alternate who goes first
            t0 = time.perf_counter()
            side.epoch()
            times[side.name].append(time.perf_counter() - t0)
            print(
                f"  epoch {e + 1}/{epochs}  {side.name}: {times[side.name][-1]:.2f} s", flush=True
            )
    return {s.name: (statistics.median(times[s.name]), s.test_accuracy()) for s in (a, b)}


def race_row(task: str, epochs: int, peer, mine, goal: float | None) -> tuple:
    """Race ``peer`` against ``mine`` for ``epochs`` and return one row of the result table."""
    return task, epochs, race(peer, mine, epochs), peer.name, mine.name, goal


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=3, help="Listing 5.2 pair (default 3)")
    parser.add_argument("--lstm-epochs", type=int, default=3, help="LSTM pair (default 3)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, both sides")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=None, help="folder holding mnist/ (else searched)")
    parser.add_argument("--skip", choices=("keras", "floor", "lstm"), action="append", default=[])
    parser.add_argument("--limit", type=int, default=0, help="first N train/test images (smoke)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    train, test = mnist_rows(args.data_dir)
    if args.limit:
        train, test = (tuple(t[: args.limit] for t in pair) for pair in (train, test))
    print(
        f"MNIST-10k rows: {len(train[0]):,} train / {len(test[0]):,} test; "
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)"
    )
    rows = []
    if "keras" not in args.skip:
        import keras

        print(
            f"Listing 5.2: Keras {keras.__version__} ({keras.backend.backend()}) vs rnnlab, "
            f"{args.epochs} epoch(s)"
        )
        theirs = KerasListing(train, test, args.seed)
        ours = RnnlabPreset("listing-5-2", train, test, args.seed, args.epochs)
        rows.append(
            race_row("Listing 5.2 SimpleRNN(256), SGD", args.epochs, theirs, ours, GOAL_KERAS)
        )
    if "keras" not in args.skip and "floor" not in args.skip:
        print(f"Listing 5.2: Keras vs a plain torch.nn.RNN script, {args.epochs} epoch(s)")
        theirs, floor = (
            KerasListing(train, test, args.seed),
            PlainTorchListing(train, test, args.seed),
        )
        rows.append(
            race_row(
                "Listing 5.2, the ceiling: plain torch vs Keras", args.epochs, theirs, floor, None
            )
        )
    if "lstm" not in args.skip:
        print(f"LSTM(128): plain torch vs rnnlab, {args.lstm_epochs} epoch(s)")
        theirs = PlainTorch(train, test, args.seed, args.lstm_epochs)
        ours = RnnlabPreset("lstm-rows", train, test, args.seed, args.lstm_epochs)
        rows.append(
            race_row("LSTM(128), Adam one-cycle", args.lstm_epochs, theirs, ours, GOAL_TORCH)
        )
    print()
    print(
        "| task (MNIST-10k rows) | epochs | peer | peer s/epoch | ours s/epoch | speed-up "
        "| peer test acc | ours test acc | goal |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for task, epochs, result, peer, mine, goal in rows:
        (pt, pa), (mt, ma) = result[peer], result[mine]
        speed = pt / mt
        if goal is None:
            goal_text = "reference (a torch script, not rnnlab)"
        elif goal == GOAL_KERAS:
            met = speed >= goal and abs(ma - pa) <= 0.01
            goal_text = f">= {goal:.0f}x and acc within 1 pt: {'met' if met else 'missed'}"
        else:
            met = mt / pt <= goal
            goal_text = f"rnnlab/torch {mt / pt:.2f}x <= {goal:.2f}x: {'met' if met else 'missed'}"
        print(
            f"| {task} | {epochs} | {peer} | {pt:.2f} | {mt:.2f} | {speed:.2f}x | {pa:.4f} | "
            f"{ma:.4f} | {goal_text} |"
        )


if __name__ == "__main__":
    main()
