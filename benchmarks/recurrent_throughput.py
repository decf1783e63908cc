"""Forward + backward time and memory of rnnlab's recurrent layers beside torch.nn and
Keras 3, all interleaved in one run.

For each (B, T, I, H) it times, on float32 CPU, ``out = layer(x); out.sum().backward()``
with all outputs (B, T, H) returned and gradients of the parameters only:

- ``torch``      ``torch.nn.RNN/LSTM/GRU(batch_first=True)``: the fused kernel, the reference;
- ``fused``      rnnlab's layer, ``implementation="fused"`` (torch's kernel fed rnnlab's
                 parameters);
- ``explicit``   rnnlab's layer, ``implementation="explicit"``: the hand-derived BPTT of
                 :mod:`rnnlab.layers.bptt` (one autograd Function for the whole sequence);
- ``reference``  rnnlab's layer, ``implementation="reference"``: the readable autograd loop
                 (what "explicit" ran before; for the record);
- the explicit configurations users run, each against torch.nn's fused kernel of the same
  cell: LSTM and GRU with ``recurrent_dropout=0.2``, the textbook GRU
  (``reset_after=False``), a softsign / hard_sigmoid LSTM, and an LSTM over random lengths
  (``lengths`` drawn in [T/2, T], ``implementation="explicit"``; the torch row is
  unmasked);
- ``keras``      Keras 3 (torch backend) ``LSTM(recurrent_dropout=0.2)``, skipped with a note
                 when Keras is not installed.

``listing-5.2`` rows time one training step (forward, cross-entropy, backward, SGD) of the
chapter's Listing 5.2 (SimpleRNN(256), input dropout 0.3, Dense(10), batch 128 of 28 MNIST
rows; random data of that shape) without and with ``recurrent_dropout=0.2``: an epoch is 79
such steps on MNIST-10k, so their ratio is the epoch's.

Every variant is warmed up, then all variants and all ``--threads`` counts run in
interleaved rounds (machine drift hits all alike), each round in a new random order (a
variant that always ran right after another read up to 4% slower than in the other order:
the order, not the code, for two calls of one kernel), and the median of ``--repeats``
rounds is reported, with ratios to torch.nn at the same thread count. ``spread`` is the
round-to-round band of that ratio (its quartiles over the rounds, each round's own pair):
the noise a reader sets a goal against. ``--clock cpu`` times the process's CPU time
instead of wall time (``time.process_time``: robust to other processes on a loaded machine,
but with several threads it sums their work, so use it with ``--threads 1``).

``GFLOP/s`` rows: the matmul work of one LSTM forward + backward (inputs without gradient,
as here: ``2 T B 4H (I + H)`` forward, ``2 T B 4H (2H + I)`` backward) over its time, for
torch.nn's fused kernel and the explicit path, beside MKL's rate on one large square matmul
(the practical ceiling of one core). Memory, measured once per
variant: ``saved MB``, the distinct storages autograd saves for backward
(``torch.autograd.graph.saved_tensors_hooks``), and ``peak MB``, the highest running total
of the CPU allocations the profiler records over one forward + backward.

Goals (issue 15): explicit <= 1.25x torch.nn for LSTM and GRU at both shapes and thread
counts (moonshot 1.00x); explicit LSTM with recurrent dropout >= 4x faster than Keras's;
fused <= 1.00x; Listing 5.2 with recurrent dropout <= 1.25x the step without.

Run: ``KERAS_BACKEND=torch python benchmarks/recurrent_throughput.py [--threads 1 2]
[--repeats 15] [--shapes 128,28,28,128 32,100,64,256]``.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from collections.abc import Callable

os.environ.setdefault("KERAS_BACKEND", "torch")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from rnnlab.layers import GRU, LSTM, Dense, Sequential, SimpleRNN  # noqa: E402

SHAPES = ((128, 28, 28, 128), (32, 100, 64, 256))
KINDS = {"SimpleRNN": (SimpleRNN, nn.RNN), "LSTM": (LSTM, nn.LSTM), "GRU": (GRU, nn.GRU)}
CONFIGS = {  # name -> (kind, layer kwargs, uses lengths)
    "LSTM rd=0.2": ("LSTM", {"recurrent_dropout": 0.2}, False),
    "GRU rd=0.2": ("GRU", {"recurrent_dropout": 0.2}, False),
    "GRU textbook": ("GRU", {"reset_after": False}, False),
    "LSTM softsign": ("LSTM", {"activation": "softsign", "recurrent_activation": "hard_sigmoid"},
                      False),
    "LSTM lengths": ("LSTM", {"implementation": "explicit"}, True),
}  # fmt: skip


@torch.no_grad()
def copy_from_torch(layer, module: nn.RNNBase) -> None:
    """Same weights on both sides (rnnlab's single bias = torch's b_ih + b_hh)."""
    cell = layer.cell
    cell.weight_ih.copy_(module.weight_ih_l0)
    cell.weight_hh.copy_(module.weight_hh_l0)
    if getattr(cell, "bias_ih", None) is not None:
        cell.bias_ih.copy_(module.bias_ih_l0)
        cell.bias_hh.copy_(module.bias_hh_l0)
    elif cell.bias is not None:
        cell.bias.copy_(module.bias_ih_l0 + module.bias_hh_l0)


def layer_step(module, x: torch.Tensor, forward: Callable) -> Callable[[], None]:
    params = [p for p in module.parameters() if p.requires_grad]

    def step() -> None:
        for p in params:
            p.grad = None
        forward(module, x).sum().backward()

    return step


def keras_step(B: int, T: int, I: int, H: int, x: torch.Tensor):
    try:
        import keras
    except ImportError:
        return None
    layer = keras.layers.LSTM(H, return_sequences=True, recurrent_dropout=0.2)
    layer.build((None, T, I))
    weights = [v.value for v in layer.trainable_weights]

    def step() -> None:
        for w in weights:
            w.grad = None
        layer(x, training=True).sum().backward()

    return step


def listing_steps(B: int = 128) -> dict[str, Callable[[], None]]:
    """One SGD step of Listing 5.2 (SimpleRNN(256) on 28 rows of 28 pixels), without and
    with recurrent dropout (same weights)."""
    x, y = torch.rand(B, 28, 28), torch.randint(0, 10, (B,))
    models = {}
    for name, rd in (("listing-5.2", 0.0), ("listing-5.2 rd=0.2", 0.2)):
        torch.manual_seed(0)
        models[name] = Sequential(
            SimpleRNN(28, 256, dropout=0.3, recurrent_dropout=rd), Dense(256, 10)
        )
    steps = {}
    for name, model in models.items():
        opt = torch.optim.SGD(model.parameters(), lr=0.01)

        def step(model=model, opt=opt) -> None:
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            opt.step()

        steps[name] = step
    return steps


def memory(step: Callable[[], None], forward: Callable[[], torch.Tensor] | None):
    """(saved MB, peak MB) of one call; see the module docstring."""
    saved = float("nan")
    if forward is not None:
        seen: dict[int, int] = {}

        def pack(t: torch.Tensor) -> torch.Tensor:
            try:
                storage = t.untyped_storage()
                seen[storage.data_ptr()] = storage.nbytes()
            except (RuntimeError, NotImplementedError):  # opaque (e.g. mkldnn) tensors
                seen[id(t)] = t.numel() * t.element_size()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = forward()
        del out
        saved = sum(seen.values()) / 2**20
    activities = [torch.profiler.ProfilerActivity.CPU]
    with torch.profiler.profile(activities=activities, profile_memory=True) as prof:
        step()
    events = prof.profiler.kineto_results.events()
    allocs = sorted((e.start_ns(), e.nbytes()) for e in events if e.name() == "[memory]")
    total = peak = 0
    for _, nbytes in allocs:
        total += nbytes
        peak = max(peak, total)
    return saved, peak / 2**20


def variants(B: int, T: int, I: int, H: int):
    """name -> (kind for the ratio, step, forward-only callable for the saved-bytes count)."""
    x = torch.randn(B, T, I)
    lengths = torch.randint(T // 2, T + 1, (B,))
    out: dict[str, tuple[str, Callable, Callable | None]] = {}
    refs = {}
    for kind, (ours_cls, torch_cls) in KINDS.items():
        torch.manual_seed(0)
        ref = refs[kind] = torch_cls(I, H, batch_first=True)
        fwd = lambda m, x: m(x)[0]  # noqa: E731
        out[f"{kind} torch"] = (kind, layer_step(ref, x, fwd), lambda r=ref: r(x)[0])
        for impl in ("fused", "explicit", "reference"):
            layer = ours_cls(I, H, return_sequences=True, implementation=impl)
            copy_from_torch(layer, ref)
            with torch.no_grad():  # same answers before timing
                torch.testing.assert_close(layer(x), ref(x)[0], atol=1e-4, rtol=1e-4)
            own = lambda m, x: m(x)  # noqa: E731
            out[f"{kind} {impl}"] = (kind, layer_step(layer, x, own), lambda m=layer: m(x))
    for name, (kind, kwargs, use_lengths) in CONFIGS.items():
        layer = KINDS[kind][0](I, H, return_sequences=True, **kwargs)
        assert not layer.uses_fused_path(), name
        lens = lengths if use_lengths else None
        fwd = lambda m, x, lens=lens: m(x, lens)  # noqa: E731
        out[name] = (kind, layer_step(layer, x, fwd), lambda m=layer, f=fwd: f(m, x))
    keras = keras_step(B, T, I, H, x)
    if keras is not None:
        out["keras LSTM rd=0.2"] = ("LSTM", keras, None)
    return out


def time_all(steps: dict[str, Callable], threads: list[int], warmup: int, repeats: int,
             clock: Callable[[], float] = time.perf_counter):  # fmt: skip
    """Seconds per round for each (threads, name): every round runs every thread count and
    step, the steps in a new random order (fixed seed)."""
    for n in threads:
        torch.set_num_threads(n)
        for step in steps.values():
            for _ in range(warmup):
                step()
    times = {(n, name): [] for n in threads for name in steps}
    order, rng = list(steps), random.Random(0)
    for _ in range(repeats):
        for n in threads:
            torch.set_num_threads(n)
            rng.shuffle(order)
            for name in order:
                start = clock()
                steps[name]()
                times[n, name].append(clock() - start)
    return times


def ratio_band(ts: list[float], base: list[float]) -> tuple[float, float, float]:
    """Median ratio of the medians, and the quartiles of the per-round ratios."""
    per_round = [a / b for a, b in zip(ts, base, strict=True)]
    q = statistics.quantiles(per_round, n=4) if len(per_round) > 1 else per_round * 3
    return statistics.median(ts) / statistics.median(base), q[0], q[-1]


def lstm_gflop(B: int, T: int, I: int, H: int) -> float:
    """Matmul GFLOP of one LSTM forward + backward, inputs without gradient."""
    return 2 * T * B * 4 * H * ((I + H) + (2 * H + I)) / 1e9


def mkl_gflops(clock: Callable[[], float], n: int = 1024, repeats: int = 7) -> float:
    """GFLOP/s of one (n x n) x (n x n) float32 matmul at the current thread count (the
    fastest of ``repeats``)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = clock()
        torch.mm(a, b)
        best = min(best, clock() - start)
    return 2 * n**3 / best / 1e9


def bench_shape(B, T, I, H, threads, warmup, repeats, clock) -> list[dict]:
    table = variants(B, T, I, H)
    times = time_all({name: v[1] for name, v in table.items()}, threads, warmup, repeats, clock)
    torch.set_num_threads(threads[0])
    mem = {name: memory(step, fwd) for name, (_, step, fwd) in table.items()}
    rows = []
    for n in threads:
        for name, (kind, _, _) in table.items():
            ratio, lo, hi = ratio_band(times[n, name], times[n, f"{kind} torch"])
            rows.append(dict(shape=(B, T, I, H), threads=n, name=name,
                             ms=1e3 * statistics.median(times[n, name]), ratio=ratio,
                             lo=lo, hi=hi, ts=times[n, name], saved=mem[name][0],
                             peak=mem[name][1]))  # fmt: skip
    return rows


def format_rows(rows: list[dict]) -> str:
    head = (f"{'(B, T, I, H)':<20}{'thr':>4}  {'variant':<22}{'ms':>9}{'/ torch':>9}"
            f"{'spread':>13}{'saved MB':>10}{'peak MB':>9}")  # fmt: skip
    lines = [head, "-" * len(head)]
    for r in rows:
        saved = "-" if r["saved"] != r["saved"] else f"{r['saved']:.1f}"  # NaN: not counted
        lines.append(
            f"{str(r['shape']):<20}{r['threads']:>4}  {r['name']:<22}{r['ms']:>9.2f}"
            f"{r['ratio']:>8.2f}x{r['lo']:>7.2f}-{r['hi']:.2f}{saved:>10}{r['peak']:>9.1f}"
        )
    return "\n".join(lines)


def verdict(value: float, lo: float, hi: float, goal: float, below: bool = True) -> str:
    """'' when the goal is met, else MISSED, marked when the round-to-round band reaches it."""
    if (value <= goal) if below else (value >= goal):
        return ""
    inside = lo <= goal if below else hi >= goal
    return "  MISSED (inside the spread)" if inside else "  MISSED"


def summary(rows: list[dict]) -> str:
    """The goals' ratios, one line each, with the round-to-round spread."""
    lines = []
    by = {(r["shape"], r["threads"], r["name"]): r for r in rows}
    for shape, n, name in sorted(by):
        r = by[shape, n, name]
        if name.endswith(" explicit") or name.endswith(" fused"):
            if name.startswith("SimpleRNN"):
                continue
            goal = 1.25 if name.endswith("explicit") else 1.00
            lines.append(f"{shape} {n} thr {name:<14} {r['ratio']:.2f}x torch.nn (spread "
                         f"{r['lo']:.2f}-{r['hi']:.2f}; goal <= {goal:.2f}x)"
                         f"{verdict(r['ratio'], r['lo'], r['hi'], goal)}")  # fmt: skip
        if name == "keras LSTM rd=0.2":
            k, lo, hi = ratio_band(r["ts"], by[shape, n, "LSTM rd=0.2"]["ts"])
            lines.append(f"{shape} {n} thr explicit LSTM rd=0.2 is {k:.2f}x faster than Keras 3 "
                         f"(spread {lo:.2f}-{hi:.2f}; goal >= 4x)"
                         f"{verdict(k, lo, hi, 4.0, below=False)}")  # fmt: skip
    return "\n".join(lines)


def gflops(rows: list[dict], clock: Callable[[], float]) -> str:
    """Achieved matmul GFLOP/s of the LSTM rows, and MKL's large-matmul rate per thread count."""
    lines, peaks = [], {}
    for r in rows:
        if r["name"] not in ("LSTM torch", "LSTM explicit"):
            continue
        n = r["threads"]
        if n not in peaks:
            torch.set_num_threads(n)
            peaks[n] = mkl_gflops(clock)
        rate = lstm_gflop(*r["shape"]) / (r["ms"] / 1e3)
        lines.append(f"{r['shape']} {n} thr {r['name']:<14} {lstm_gflop(*r['shape']):.2f} GFLOP "
                     f"in {r['ms']:.2f} ms: {rate:.0f} GFLOP/s (MKL 1024^3 matmul: "
                     f"{peaks[n]:.0f} GFLOP/s)")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument(
        "--shapes", nargs="*", default=[",".join(map(str, s)) for s in SHAPES],
        help="B,T,I,H entries (default: 128,28,28,128 32,100,64,256)",
    )  # fmt: skip
    parser.add_argument("--skip-listing", action="store_true", help="no Listing 5.2 rows")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall time (default) or the process's CPU time")  # fmt: skip
    args = parser.parse_args(argv)
    if any(n < 1 for n in args.threads):
        parser.error(f"--threads must be >= 1, got {args.threads}")
    try:
        import keras

        keras_note = f"Keras {keras.__version__} ({keras.backend.backend()})"
    except ImportError:
        keras_note = "Keras not installed: its row is skipped"
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    print(f"torch {torch.__version__}, float32 CPU, threads {args.threads}, warm-up "
          f"{args.warmup}, median of {args.repeats}, {args.clock} clock; {keras_note}; "
          f"load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")  # fmt: skip
    rows = []
    for text in args.shapes:
        B, T, I, H = (int(v) for v in text.split(","))
        shape_rows = bench_shape(B, T, I, H, args.threads, args.warmup, args.repeats, clock)
        print(format_rows(shape_rows), flush=True)
        rows += shape_rows
    print(summary(rows))
    print(gflops(rows, clock))
    if not args.skip_listing:
        steps = listing_steps()
        times = time_all(steps, args.threads, args.warmup, args.repeats, clock)
        for n in args.threads:
            base, rd = (1e3 * statistics.median(times[n, k])
                        for k in ("listing-5.2", "listing-5.2 rd=0.2"))  # fmt: skip
            print(f"Listing 5.2 step, {n} thr: {base:.2f} ms, with recurrent_dropout=0.2 "
                  f"{rd:.2f} ms: {rd / base:.2f}x (goal <= 1.25x)")  # fmt: skip
    print(f"load average at the end {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return rows


if __name__ == "__main__":
    main()
