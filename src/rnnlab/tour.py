"""``rnnlab tour`` (what ``make run`` runs): the chapter's systems, one part at a time, on the
data embedded in the package (scikit-learn's 8x8 digits), in a few minutes on a laptop CPU.

Part 1 prints Listing 5.1's model summary (Keras format); part 2 trains an LSTM that reads
each digit row by row (8 steps of 8 pixels) and prints its test accuracy.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from rnnlab.data import images_to_sequences, load
from rnnlab.layers import LSTM, Dense, Sequential, SimpleRNN, summary
from rnnlab.utils import seed_everything


def listing_5_1() -> str:
    """Listing 5.1: SimpleRNN(512, dropout 0.2) over (30, 12) inputs, Dense(5, softmax)."""
    model = Sequential(SimpleRNN(12, 512, dropout=0.2), Dense(512, 5, activation="softmax"))
    return summary(model, (30, 12), print_fn=None)


def digits_lstm(epochs: int = 20, hidden_size: int = 64, seed: int = 0) -> dict:
    """Train LSTM(8 -> hidden) + Dense(10) on digits read row by row; return metrics."""
    seed_everything(seed)
    train, test = load("digits", "train"), load("digits", "test")
    x_train, x_test = images_to_sequences(train.images), images_to_sequences(test.images)
    model = Sequential(LSTM(8, hidden_size), Dense(hidden_size, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(x_train), generator=gen).split(64):
            loss = F.cross_entropy(model(x_train[idx]), train.labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(x_test).argmax(-1) == test.labels).float().mean().item()
    return {
        "test_accuracy": accuracy,
        "seconds": time.perf_counter() - start,
        "n_train": len(x_train),
        "n_test": len(x_test),
        "epochs": epochs,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rnnlab tour", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke version (for tests)")
    args = parser.parse_args(argv)
    print("== Part 1: Listing 5.1, the model summary ==")
    print(listing_5_1())
    print("\n== Part 2: an LSTM reads 8x8 digits row by row (scikit-learn digits) ==")
    m = digits_lstm(epochs=2 if args.quick else 20)
    print(
        f"LSTM(8->64) + Dense(10), {m['epochs']} epochs on {m['n_train']} digits "
        f"in {m['seconds']:.1f} s: test accuracy {m['test_accuracy']:.3f} on {m['n_test']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
