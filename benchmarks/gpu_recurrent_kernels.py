"""Forward + backward time of rnnlab's Triton recurrent kernels beside cuDNN and the explicit
loop, on one GPU, in one run (issue 8, item 2).

For each (B, T, H) (input size I = H) it times one call ``out = layer(x);
out.sum().backward()`` (all outputs (B, T, H), gradients of x and of every parameter) for:

- ``cudnn``:    ``torch.nn.LSTM(batch_first=True)`` (cuDNN), the reference;
- ``triton``:   rnnlab's LSTM cell through :class:`rnnlab.layers.triton_rnn.TritonLSTM`
                (input projection by torch, recurrence by the persistent Triton kernels);
- ``explicit``: rnnlab's ``LSTM(implementation="explicit")`` (the Python time loop);

and, for a configuration cuDNN cannot run (hard_sigmoid gates, softsign activation,
recurrent dropout 0.25, the chapter's kind), ``triton`` against ``explicit`` only.

Each variant is warmed up (Triton compiles on its first call), then variants run in
interleaved rounds and the median of ``--repeats`` rounds (CUDA events) is reported with
ratios cudnn / triton (> 1: Triton faster). Issue 8's goals: >= 3x at B <= 16 (T = 128,
H = 256 and 512), >= 1/1.2 at B = 256. Up to H = 128 one program holds the whole W_hh;
above, the kernels tile over hidden units (rnnlab.layers.triton_tiled), in one persistent
launch when the grid fits the SMs, else one launch per step; each row says which. A row
whose kernel fails (spills, compile errors) prints the error and the run goes on.

Run on a CUDA machine: ``python benchmarks/gpu_recurrent_kernels.py [--repeats 20]``.
``--resources`` needs no GPU: it compiles the LSTM kernels for sm_90 and prints registers,
spills and shared memory per width (how ``triton_rnn.MAX_HIDDEN*`` were chosen).
Without CUDA it says so and exits with status 2. Not yet run: no GPU was at hand when it
was written, so no number from it is quoted anywhere.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable

import torch
from torch import nn

SHAPES = ((1, 128, 256), (16, 128, 512), (256, 128, 512), (16, 128, 64), (16, 128, 128))


def make_cudnn(B, T, H):
    module = nn.LSTM(H, H, batch_first=True).cuda()
    x = torch.randn(B, T, H, device="cuda", requires_grad=True)

    def step():
        out, _ = module(x)
        out.sum().backward()

    return step


def make_rnnlab(B, T, H, path: str, chapter: bool = False):
    from rnnlab.layers import LSTM
    from rnnlab.layers.triton_rnn import TritonLSTM

    kw = {"activation": "softsign", "recurrent_activation": "hard_sigmoid"} if chapter else {}
    layer = LSTM(H, H, return_sequences=True, implementation="explicit", **kw).cuda()
    cell = layer.cell
    x = torch.randn(B, T, H, device="cuda", requires_grad=True)
    mask = None
    if chapter:
        mask = nn.functional.dropout(torch.ones(B, H, device="cuda"), 0.25, training=True)
    s0 = cell.initial_state(B, device="cuda")

    if path == "explicit":

        def step():
            if chapter:  # the layer's own loop with the same mask
                xp = cell.project_inputs(x)
                state, outs = s0, []
                for xp_t in xp.unbind(1):
                    out, state = cell.step(xp_t, state, mask)
                    outs.append(out)
                torch.stack(outs, 1).sum().backward()
            else:
                layer.eval().run(x)[0].sum().backward()

        return step

    def step():
        xp = cell.project_inputs(x)
        out, _, _ = TritonLSTM.apply(
            xp, cell.weight_hh, s0.h, s0.c, mask, None, cell.activation,
            cell.recurrent_activation,
        )  # fmt: skip
        out.sum().backward()

    return step


def time_rounds(steps: dict[str, Callable[[], None]], repeats: int) -> dict[str, float]:
    """Median milliseconds per step, variants interleaved round by round."""
    for name, step in list(steps.items()):
        try:
            for _ in range(3):
                step()
            torch.cuda.synchronize()
        except Exception as err:  # report it and go on with the other variants
            print(f"    {name}: failed: {type(err).__name__}: {str(err).splitlines()[0][:160]}")
            del steps[name]
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            step()
            end.record()
            torch.cuda.synchronize()
            times[name].append(start.elapsed_time(end))
    return {name: statistics.median(ts) for name, ts in times.items()}


def resources(widths=(64, 128, 256, 512)) -> None:
    """Compile the LSTM kernels for sm_90 WITHOUT a GPU (Triton's bundled ptxas) and print
    each one's registers, spill stack and shared memory (an H100/H200 block may use 227 KB).
    Slow: about a minute per kernel on a small CPU."""
    import os
    import subprocess
    import tempfile

    import triton
    from triton.backends.compiler import GPUTarget

    from rnnlab.layers import triton_kernels, triton_tiled

    cuobjdump = os.path.join(os.path.dirname(triton.__file__), "backends/nvidia/bin/cuobjdump")
    ints = ("B", "T", "H", "t_start", "t_stop", "s_start", "s_stop")
    ptr = {"len_ptr": "*i64", "sync_ptr": "*i32"}

    def compile_one(fn, **consts):
        consts.update(HAS_MASK=True, HAS_LEN=True, ACT=0, REC_ACT=1, BLOCK_B=16)
        sig = {
            n: "constexpr" if n in consts else "i32" if n in ints else ptr.get(n, "*fp32")
            for n in fn.arg_names
        }
        src = triton.compiler.ASTSource(fn=fn, signature=sig, constexprs=consts)
        try:
            kernel = triton.compile(src, target=GPUTarget("cuda", 90, 32))
        except Exception as err:  # report it and go on
            return f"compile failed: {str(err).splitlines()[0][:120]}"
        with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
            f.write(kernel.asm["cubin"])
            f.flush()
            usage = subprocess.run([cuobjdump, "-res-usage", f.name], capture_output=True)
        regs = [ln.split()[:2] for ln in usage.stdout.decode().splitlines() if "REG:" in ln]
        return f"{' '.join(regs[0]) if regs else '?'} shared {kernel.metadata.shared // 1024} KB"

    for H in widths:
        bh = max(16, triton.next_power_of_2(H))
        for name, fn, kw in (
            ("whole-width fwd", triton_kernels.lstm_fwd_kernel, {"SAVE": True, "BLOCK_H": bh}),
            ("whole-width bwd", triton_kernels.lstm_bwd_kernel, {"BLOCK_H": bh}),
            ("tiled fwd", triton_tiled.lstm_fwd_tiled_kernel, {"SAVE": True}),
            ("tiled bwd", triton_tiled.lstm_bwd_tiled_kernel, {}),
        ):
            if name.startswith("tiled"):
                kw = {**kw, "PERSISTENT": True, "BLOCK_U": 16, "BLOCK_K": bh}
            print(f"  H={H:4d} {name}: {compile_one(fn, **kw)}", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument(
        "--resources", action="store_true", help="compile for sm_90 and print resource usage"
    )
    args = parser.parse_args(argv)
    if args.resources:
        resources()
        return 0
    if not torch.cuda.is_available():
        print("gpu_recurrent_kernels: needs a CUDA GPU (none found); nothing was measured.")
        return 2
    try:
        import triton
    except ImportError:
        print("gpu_recurrent_kernels: needs the `triton` package (pip install triton).")
        return 2
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    print(
        f"GPU: {torch.cuda.get_device_name()}  torch {torch.__version__}  "
        f"cuDNN {torch.backends.cudnn.version()}  triton {triton.__version__}  fp32"
    )
    print("LSTM forward+backward, ms per call (median), ratio = cudnn / triton")
    for B, T, H in SHAPES:
        torch.manual_seed(0)
        from rnnlab.layers import triton_rnn, triton_tiled

        if H <= triton_rnn.MAX_HIDDEN:
            mode = "whole-width kernel, one program per 16 rows"
        elif triton_tiled.persistent_possible(B, H, torch.device("cuda")):
            mode = "unit-tiled, one persistent launch (grid barrier)"
        else:
            mode = "unit-tiled, one launch per step (grid larger than the SM count)"
        print(f"  B={B} T={T} H={H}  triton: {mode}")
        ms = time_rounds(
            {
                "cudnn": make_cudnn(B, T, H),
                "triton": make_rnnlab(B, T, H, "triton"),
                "explicit": make_rnnlab(B, T, H, "explicit"),
            },
            args.repeats,
        )
        line = "    " + "  ".join(f"{k} {v:8.3f}" for k, v in ms.items())
        if "triton" in ms:
            line += f"  cudnn/triton {ms['cudnn'] / ms['triton']:.2f}x"
            line += f"  explicit/triton {ms['explicit'] / ms['triton']:.2f}x"
        print(line)
        ms = time_rounds(
            {
                "triton": make_rnnlab(B, T, H, "triton", chapter=True),
                "explicit": make_rnnlab(B, T, H, "explicit", chapter=True),
            },
            args.repeats,
        )
        line = "    chapter config (softsign/hard_sigmoid, rec. dropout): "
        line += "  ".join(f"{k} {v:8.3f}" for k, v in ms.items())
        if "triton" in ms:
            line += f"  explicit/triton {ms['explicit'] / ms['triton']:.2f}x"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
