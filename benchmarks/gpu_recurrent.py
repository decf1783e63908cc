"""GPU speed in one run on one GPU: rnnlab beside torch.nn / cuDNN, with ratios.

Part 1, LSTM forward + backward, (B, T, H) = (1, 128, 256), (16, 128, 512), (256, 128, 512),
input size = H, fp32, all outputs returned, ``out.sum().backward()``:

- ``torch``:    ``torch.nn.LSTM(batch_first=True)`` (cuDNN), the reference;
- ``fused``:    rnnlab's LSTM, ``implementation="fused"`` (the same cuDNN kernel fed rnnlab's
                single bias);
- ``explicit``: rnnlab's LSTM, ``implementation="explicit"`` (the Python time loop).

Part 2, one row-MNIST epoch: LSTM(28 -> 128) + Linear(10), Adam lr 1e-3, batch 128, the
training images resident on the GPU, 468 full batches (60,000 examples, ``drop_last``).
MNIST's training images come from ``--data-dir`` (tiled to 60,000 when the folder holds the
10k subset); without them, 60,000 synthetic images of the same shape. Variants:

- ``torch eager``:        a plain PyTorch loop over nn.LSTM + nn.Linear (no host reads);
- ``rnnlab eager``:       ``rnnlab.training.families.classify.classify_step`` (what ``rnnlab train``
                          runs: it reads loss, accuracy and gradient norm every step);
- ``rnnlab graph``:       the same step captured as one CUDA graph
                          (:class:`rnnlab.training.cuda_graph.GraphedStep`, ``--cuda-graph``);
- ``rnnlab graph bf16``:  the graph under bf16 autocast (``--precision bf16``);
- ``explicit eager`` / ``explicit graph``: rnnlab's Python time loop
                          (``--model.implementation=explicit``), eager and captured.

Each variant warms up (one epoch; capture happens there) and then ``--repeats`` epochs are
timed with ``torch.cuda.synchronize()`` at both ends; the median is printed beside its ratio
to ``torch eager``. Goals (issue 8): graph <= 0.10 s per epoch on an H100; explicit graph
<= 0.30 s. The GPU's name, torch and cuDNN versions head the output.

Without CUDA the script prints "no CUDA: nothing measured" and exits 0.

Run: ``python benchmarks/gpu_recurrent.py [--data-dir ../shared/datasets] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

LSTM_SHAPES = ((1, 128, 256), (16, 128, 512), (256, 128, 512))
EPOCH_EXAMPLES, BATCH = 60_000, 128


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=None, help="folder holding MNIST (IDX files)")
    p.add_argument("--repeats", type=int, default=3, help="timed epochs per variant")
    p.add_argument("--layer-repeats", type=int, default=20, help="timed calls per LSTM shape")
    p.add_argument("--skip-explicit", action="store_true", help="skip the explicit-loop rows")
    return p


# ----------------------------------------------------------------------------- part 1
def _time_cuda(fn: Callable[[], None], repeats: int, warmup: int = 3) -> float:
    """Median milliseconds of ``fn`` over ``repeats`` calls (CUDA events)."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def _fwd_bwd(module: nn.Module, x: torch.Tensor, is_torch: bool) -> Callable[[], None]:
    params = list(module.parameters())

    def step() -> None:
        for p in params:
            p.grad = None
        out = module(x)[0] if is_torch else module(x)
        out.sum().backward()

    return step


def layer_table(repeats: int, skip_explicit: bool) -> None:
    from rnnlab.layers import LSTM

    print("\nLSTM forward+backward, fp32, ms (median); ratio = rnnlab / torch")
    print(f"{'B':>4} {'T':>4} {'H':>4}  {'torch':>8}  {'fused':>8} {'ratio':>6}  "
          f"{'explicit':>9} {'ratio':>6}")  # fmt: skip
    for B, T, H in LSTM_SHAPES:
        x = torch.randn(B, T, H, device="cuda")
        ref = nn.LSTM(H, H, batch_first=True).cuda()
        t_torch = _time_cuda(_fwd_bwd(ref, x, True), repeats)
        fused = LSTM(H, H, return_sequences=True, implementation="fused").cuda()
        t_fused = _time_cuda(_fwd_bwd(fused, x, False), repeats)
        row = f"{B:>4} {T:>4} {H:>4}  {t_torch:>8.2f}  {t_fused:>8.2f} {t_fused / t_torch:>6.2f}"
        if not skip_explicit:
            explicit = LSTM(H, H, return_sequences=True, implementation="explicit").cuda()
            t_exp = _time_cuda(_fwd_bwd(explicit, x, False), max(repeats // 4, 3))
            row += f"  {t_exp:>9.2f} {t_exp / t_torch:>6.2f}"
        print(row, flush=True)


# ----------------------------------------------------------------------------- part 2
def row_mnist(data_dir: str | None) -> tuple[torch.Tensor, torch.Tensor, str]:
    """(60000, 28, 28) images on the GPU, labels, and where they came from."""
    from rnnlab.data import load, synthetic_images

    try:
        ds = load("mnist", "train", root=data_dir)
        source = f"MNIST train, {len(ds.images):,} images ({ds.location})"
    except Exception as e:  # not found / not readable: same shape, synthetic
        ds = synthetic_images(EPOCH_EXAMPLES, (28, 28), 10, seed=0)
        source = f"synthetic 28x28 images (MNIST not found: {type(e).__name__})"
    images, labels = ds.images.float(), ds.labels.long()
    if len(images) < EPOCH_EXAMPLES:
        reps = -(-EPOCH_EXAMPLES // len(images))
        images, labels = images.repeat(reps, 1, 1), labels.repeat(reps)
        source += f", tiled to {EPOCH_EXAMPLES:,}"
    return images[:EPOCH_EXAMPLES].cuda(), labels[:EPOCH_EXAMPLES].cuda(), source


class TorchRowClassifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm, self.dense = nn.LSTM(28, 128, batch_first=True), nn.Linear(128, 10)

    def forward(self, x, lengths=None):
        return self.dense(self.lstm(x)[0][:, -1])


def _epoch_runner(model, step, x, y) -> Callable[[], None]:
    from rnnlab.training.loop import Batches

    data = Batches(x, y, batch_size=BATCH, seed=0, drop_last=True)
    opt = step.optimizer

    def epoch() -> None:
        if hasattr(step.fn, "start_epoch"):
            step.fn.start_epoch()
        for batch in data:
            step.fn(model, batch, opt)
        if hasattr(step.fn, "epoch_sums"):
            step.fn.epoch_sums()

    return epoch


class _Step:
    def __init__(self, fn, optimizer) -> None:
        self.fn, self.optimizer = fn, optimizer


def _torch_step(model, batch, optimizer) -> dict:
    x, y = batch
    optimizer.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    optimizer.step()
    return {}


def _variants(skip_explicit: bool) -> dict[str, Callable[[], tuple[nn.Module, _Step]]]:
    from rnnlab.models.classifiers import SequenceClassifier
    from rnnlab.training.cuda_graph import GraphedStep, device_lr
    from rnnlab.training.families.classify import classify_step
    from rnnlab.training.precision import make_precision
    from rnnlab.training.update import Update

    def torch_eager():
        model = TorchRowClassifier().cuda()
        return model, _Step(_torch_step, torch.optim.Adam(model.parameters(), lr=1e-3))

    def rnnlab(implementation: str, graph: bool, precision: str = "fp32"):
        def build():
            model = SequenceClassifier("lstm", 28, 128, 10, implementation=implementation).cuda()
            opt = torch.optim.Adam(model.parameters(), lr=1e-3, capturable=graph)
            update = Update(precision=make_precision(precision, "cuda"))
            eager = functools.partial(classify_step, update=update)
            if not graph:
                return model, _Step(eager, opt)
            device_lr(opt, torch.device("cuda"))
            return model, _Step(GraphedStep("classify", eager, update=update, log=print), opt)

        return build

    out = {
        "torch eager": torch_eager,
        "rnnlab eager": rnnlab("auto", False),
        "rnnlab graph": rnnlab("auto", True),
        "rnnlab graph bf16": rnnlab("auto", True, "bf16"),
    }
    if not skip_explicit:
        out["explicit eager"] = rnnlab("explicit", False)
        out["explicit graph"] = rnnlab("explicit", True)
    return out


def epoch_table(data_dir: str | None, repeats: int, skip_explicit: bool) -> None:
    x, y, source = row_mnist(data_dir)
    print(f"\nrow-MNIST epoch: LSTM(28->128)+Linear, Adam, batch {BATCH}, "
          f"{len(x) // BATCH} batches; {source}")  # fmt: skip
    print(f"{'variant':<18} {'s/epoch':>8} {'vs torch':>9}  notes")
    base = None
    for name, build in _variants(skip_explicit).items():
        torch.manual_seed(0)
        model, step = build()
        epoch = _epoch_runner(model, step, x, y)
        t0 = time.perf_counter()
        epoch()  # warm-up epoch (cuDNN plans, graph capture)
        torch.cuda.synchronize()
        first = time.perf_counter() - t0
        times = []
        for _ in range(repeats):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            epoch()
            torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        seconds = statistics.median(times)
        base = seconds if base is None else base
        note = f"first epoch {first:.2f} s"
        replays = getattr(step.fn, "replays", None)
        if replays is not None:
            note += f"; graph replays {replays}" + (
                f"; FELL BACK: {step.fn.reason}" if step.fn.reason else ""
            )
        print(f"{name:<18} {seconds:>8.3f} {seconds / base:>9.2f}  {note}", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA: nothing measured (this benchmark times GPU kernels; run it on a "
              "machine with a CUDA GPU)")  # fmt: skip
        return 0
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32 on both sides
    torch.backends.cudnn.allow_tf32 = False
    print(f"GPU: {torch.cuda.get_device_name()}  torch {torch.__version__}  "
          f"cuDNN {torch.backends.cudnn.version()}")  # fmt: skip
    layer_table(args.layer_repeats, args.skip_explicit)
    epoch_table(args.data_dir, args.repeats, args.skip_explicit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
