"""Forward + backward time of rnnlab's recurrent layers beside torch.nn, in one run.

For each (B, T, I, H) and each of SimpleRNN / LSTM / GRU it times, on float32 CPU:

- ``torch``:    ``torch.nn.RNN/LSTM/GRU(batch_first=True)``, the reference;
- ``fused``:    rnnlab's layer with ``implementation="fused"`` (torch's native kernel fed
                rnnlab's parameters: ONE bias, plus a zero second one);
- ``explicit``: rnnlab's layer with ``implementation="explicit"`` (the Python time loop
                of ``rnnlab.layers.recurrent`` over the cells' ``step``).

One timed call is ``out = layer(x); out.sum().backward()`` with all outputs (B, T, H)
returned, parameter gradients only. Each variant is warmed up, then the variants run in
interleaved rounds (so that drift of the machine hits all alike) and the median of
``--repeats`` rounds is reported, with ratios ours / torch. Goals: fused <= 1.10x,
explicit <= 2.5x.

Run: ``python benchmarks/recurrent_throughput.py [--threads N] [--repeats 20]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from rnnlab.layers import GRU, LSTM, SimpleRNN

SHAPES = ((128, 28, 28, 128), (32, 100, 64, 256))
KINDS = {"SimpleRNN": (SimpleRNN, nn.RNN), "LSTM": (LSTM, nn.LSTM), "GRU": (GRU, nn.GRU)}
GOALS = {"fused": 1.10, "explicit": 2.5}


@torch.no_grad()
def copy_from_torch(layer, module: nn.RNNBase) -> None:
    """Same weights on both sides (rnnlab's single bias = torch's b_ih + b_hh)."""
    cell = layer.cell
    cell.weight_ih.copy_(module.weight_ih_l0)
    cell.weight_hh.copy_(module.weight_hh_l0)
    if getattr(cell, "bias_ih", None) is not None:
        cell.bias_ih.copy_(module.bias_ih_l0)
        cell.bias_hh.copy_(module.bias_hh_l0)
    else:
        cell.bias.copy_(module.bias_ih_l0 + module.bias_hh_l0)


def make_step(module: nn.Module, x: torch.Tensor, is_torch: bool) -> Callable[[], None]:
    params = list(module.parameters())

    def step() -> None:
        for p in params:
            p.grad = None
        out = module(x)[0] if is_torch else module(x)
        out.sum().backward()

    return step


def time_variants(steps: dict[str, Callable[[], None]], warmup: int, repeats: int):
    for step in steps.values():
        for _ in range(warmup):
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return {name: 1e3 * statistics.median(ts) for name, ts in times.items()}


def bench_shape(B: int, T: int, I: int, H: int, warmup: int, repeats: int) -> list[dict]:
    rows = []
    x = torch.randn(B, T, I)
    for kind, (ours_cls, torch_cls) in KINDS.items():
        torch.manual_seed(0)
        reference = torch_cls(I, H, batch_first=True)
        steps = {"torch": make_step(reference, x, True)}
        for impl in ("fused", "explicit"):
            layer = ours_cls(I, H, return_sequences=True, implementation=impl)
            copy_from_torch(layer, reference)
            with torch.no_grad():  # same answers before timing
                torch.testing.assert_close(layer(x), reference(x)[0], atol=1e-4, rtol=1e-4)
            steps[impl] = make_step(layer, x, False)
        ms = time_variants(steps, warmup, repeats)
        rows.append({"shape": (B, T, I, H), "kind": kind, **ms})
    return rows


def format_table(rows: list[dict]) -> str:
    head = (
        f"{'(B, T, I, H)':<20}{'layer':<10}{'torch ms':>10}{'fused ms':>10}{'explicit ms':>13}"
        f"{'fused/torch':>13}{'explicit/torch':>16}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        f, e = r["fused"] / r["torch"], r["explicit"] / r["torch"]
        flag_f = " " if f <= GOALS["fused"] else "!"
        flag_e = " " if e <= GOALS["explicit"] else "!"
        lines.append(
            f"{str(r['shape']):<20}{r['kind']:<10}{r['torch']:>10.2f}{r['fused']:>10.2f}"
            f"{r['explicit']:>13.2f}{f:>12.2f}x{flag_f}{e:>14.2f}x{flag_e}"
        )
    lines.append(
        f"goals: fused/torch <= {GOALS['fused']}x, explicit/torch <= {GOALS['explicit']}x "
        "('!' marks a miss)"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument(
        "--shapes", nargs="*", default=[",".join(map(str, s)) for s in SHAPES],
        help="B,T,I,H entries (default: 128,28,28,128 32,100,64,256)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, float32 CPU, {torch.get_num_threads()} threads, "
        f"warm-up {args.warmup}, median of {args.repeats}"
    )
    rows = []
    for text in args.shapes:
        B, T, I, H = (int(v) for v in text.split(","))
        rows += bench_shape(B, T, I, H, args.warmup, args.repeats)
    print(format_table(rows))
    return rows


if __name__ == "__main__":
    main()
