"""One truncated-BPTT training window of rnnlab's language model beside a plain torch.nn
script of the same size, in one run; and generation speed in tokens per second.

Both sides train the same network on the same window: embedding (V, E) -> L x LSTM(H)
-> Linear(H, V), cross-entropy on the next tokens, the state carried (detached) from the
previous window, gradient-norm clipping at 5 and one SGD step. "torch" is the
pytorch/examples ``word_language_model`` idiom (``nn.LSTM(num_layers=L)``,
``repackage_hidden``); "rnnlab" is :class:`rnnlab.models.language.LanguageModel` with
:class:`rnnlab.training.text_steps.LMTrainStep`. The two run in interleaved rounds (drift of
a shared machine hits both alike); the median of ``--repeats`` rounds is printed with the
ratio rnnlab / torch (goal <= 1.05x).

Generation: :func:`rnnlab.models.generation.generate` writing ``--gen-length`` characters
after a 100-character prompt (one forward over the prompt, then one step per token).

Run: ``python benchmarks/text.py [--threads 1] [--repeats 15]`` (shapes: PTB-small
``--vocab 10000 --embed 200 --hidden 200 --layers 2 --batch 20 --bptt 20`` and a char model
``--vocab 65 --embed 64 --hidden 512 --layers 1 --batch 32 --bptt 64``, both by default).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from rnnlab.data.text import Vocabulary
from rnnlab.models.generation import generate
from rnnlab.models.language import LanguageModel
from rnnlab.training.text_steps import LMTrainStep
from rnnlab.training.update import Update

SHAPES = {
    "ptb-small": {
        "vocab": 10000,
        "embed": 200,
        "hidden": 200,
        "layers": 2,
        "batch": 20,
        "bptt": 20,
    },
    "char": {"vocab": 65, "embed": 64, "hidden": 512, "layers": 1, "batch": 32, "bptt": 64},
}
GOAL = 1.05


class TorchLM(nn.Module):
    """pytorch/examples' RNNModel, LSTM only, no dropout."""

    def __init__(self, vocab: int, embed: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.encoder = nn.Embedding(vocab, embed)
        self.rnn = nn.LSTM(embed, hidden, layers, batch_first=True)
        self.decoder = nn.Linear(hidden, vocab)

    def forward(self, ids, hidden=None):
        out, hidden = self.rnn(self.encoder(ids), hidden)
        return self.decoder(out), hidden


def torch_step(model: TorchLM, optimizer):
    hidden = [None]

    def step(x, y) -> None:
        if hidden[0] is not None:  # repackage_hidden: detach from the previous window
            hidden[0] = tuple(h.detach() for h in hidden[0])
        optimizer.zero_grad(set_to_none=True)
        logits, hidden[0] = model(x, hidden[0])
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        loss.item()

    return step


def rnnlab_step(model: LanguageModel, optimizer):
    step = LMTrainStep(update=Update(clip_norm=5.0))

    def run(x, y) -> None:
        step(model, (x, y), optimizer)

    return run


def time_windows(shape: dict, repeats: int) -> dict[str, float]:
    torch.manual_seed(0)
    v, e, h, n = shape["vocab"], shape["embed"], shape["hidden"], shape["layers"]
    ours = LanguageModel(v, e, h, n)
    ref = TorchLM(v, e, h, n)
    steps = {
        "torch": torch_step(ref, torch.optim.SGD(ref.parameters(), lr=0.1)),
        "rnnlab": rnnlab_step(ours, torch.optim.SGD(ours.parameters(), lr=0.1)),
    }
    x = torch.randint(0, v, (shape["batch"], shape["bptt"]))
    y = torch.randint(0, v, (shape["batch"], shape["bptt"]))
    for fn in steps.values():  # warm-up
        for _ in range(3):
            fn(x, y)
    times: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(repeats):
        for name, fn in steps.items():
            t0 = time.perf_counter()
            fn(x, y)
            times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(t) for k, t in times.items()}


def generation_speed(hidden: int, length: int) -> float:
    vocab = Vocabulary([chr(c) for c in range(32, 97)], "char")
    model = LanguageModel(len(vocab), 64, hidden, 1)
    prime = "".join(vocab.tokens[i % len(vocab)] for i in range(100))
    generate(model, vocab, prime, 20)
    t0 = time.perf_counter()
    generate(model, vocab, prime, length, temperature=0.8, top_k=40)
    return length / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--gen-length", type=int, default=500)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    print(f"threads {a.threads}, torch {torch.__version__}, median of {a.repeats} rounds")
    for name, shape in SHAPES.items():
        t = time_windows(shape, a.repeats)
        ratio = t["rnnlab"] / t["torch"]
        ok = "ok" if ratio <= GOAL else "over goal"
        print(
            f"{name:10s} {shape}  torch {t['torch'] * 1e3:7.2f} ms  rnnlab "
            f"{t['rnnlab'] * 1e3:7.2f} ms  ratio {ratio:.3f}x (goal <= {GOAL}x: {ok})"
        )
    for hidden in (256, 512):
        tps = generation_speed(hidden, a.gen_length)
        print(f"generation LSTM({hidden}) char model: {tps:,.0f} tokens/s ({a.gen_length} tokens)")


if __name__ == "__main__":
    main()
