"""The Triton path: rnnlab's SimpleRNN, LSTM and GRU cells run by fused persistent kernels
(:mod:`rnnlab.layers.triton_kernels`), forward and backward, as torch autograd Functions.

What it covers that torch's fused kernels (:mod:`rnnlab.layers.fused`) do not: any of the
cells' activations (tanh, sigmoid, hard_sigmoid, softsign, relu, linear) for both
``activation`` and ``recurrent_activation``, a recurrent-dropout mask (Gal & Ghahramani
2016), ``lengths`` with TF1 ``dynamic_rnn`` semantics, ONE bias vector, and GRU's textbook
``reset_after=False`` form as well as torch's ``reset_after=True``.

Split of the work per call, following Appleyard et al. 2016 ("Optimizing Performance of
Recurrent Neural Networks on GPUs") and Diamos et al. 2016 ("Persistent RNNs"):

    xp = cell.project_inputs(x)                 # torch: one (B*T, I) x (I, G*H) matmul
    out, hT[, cT] = kernel over all T steps      # Triton: W_hh held on chip, gates fused
    backward: dxp = kernel in reverse time       # Triton: same layout, W_hh held on chip
              dW_hh = dxp^T (m ⊙ h_prev)         # torch: one matmul over B*T rows
              dW_ih, db, dx from dxp             # torch autograd of project_inputs

Which kernels: H <= ``MAX_HIDDEN`` (64): one program per 16 batch rows holds all of W_hh
(:mod:`rnnlab.layers.triton_kernels`); LSTM with 64 < H <= 256: programs per (batch tile,
16 hidden units) hold a slice each and exchange the state through L2 every step
(:mod:`rnnlab.layers.triton_tiled`); wider LSTMs, and GRU and SimpleRNN wider than 64, are
not covered (the limits come from compiling for sm_90: see ``MAX_HIDDEN``).

Entry points: :func:`triton_supported`, :func:`triton_usable` and :func:`triton_run` (same
contract as :func:`rnnlab.layers.fused.fused_run`, plus the recurrent-dropout mask). On CPU tensors
the kernels run only under the Triton interpreter (``TRITON_INTERPRET=1`` set before this
module's first call); the tests do that at tiny sizes. Speed on a GPU is unmeasured.
"""

from __future__ import annotations

import importlib.util
import os

import torch
from torch import Tensor

from .cells import GRUCell, LSTMCell, LSTMState, activations_within

_SUPPORTED_ACTS = ("tanh", "sigmoid", "hard_sigmoid", "softsign", "relu", "linear")
# Widths from compiling the kernels for sm_90 (Triton 3.9, num_warps 4; no GPU run): the
# whole-width LSTM kernels need 270 KB (fwd) / 401 KB (bwd) of shared memory at H = 128,
# over the 227 KB an H100/H200 block may have; at H = 64 they fit (68 / 132 KB, some
# spilling). The unit-tiled LSTM fits at H = 256 (80 / 128 KB, no spills) but its backward
# needs 256 KB at H = 512.
MAX_HIDDEN = 64  # one program holds BLOCK_H^2 weights per gate; see triton_kernels
MAX_HIDDEN_TILED = 256  # LSTM above MAX_HIDDEN: tiled over units (triton_tiled)


def triton_available() -> bool:
    """Whether the ``triton`` package is importable."""
    return importlib.util.find_spec("triton") is not None


def _kernels():
    # Imported on first use: triton.jit reads TRITON_INTERPRET when the kernels are defined.
    from . import triton_kernels

    return triton_kernels


def triton_usable(x: Tensor) -> bool:
    """Whether the kernels can run on ``x``: float32 outside autocast, on a CUDA device or
    under the Triton interpreter (``TRITON_INTERPRET=1``, tests only: it is slow)."""
    if not triton_available() or x.dtype != torch.float32:
        return False  # the kernels are written and verified for float32 only
    if torch.is_autocast_enabled(x.device.type):
        return False
    return x.is_cuda or os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def triton_supported(cell) -> bool:
    """Whether the Triton kernels compute exactly this cell's equations."""
    if not triton_available():
        return False
    if type(cell) is LSTMCell and cell.hidden_size <= MAX_HIDDEN_TILED:
        return activations_within(cell, _SUPPORTED_ACTS)
    if cell.hidden_size > MAX_HIDDEN:
        return False
    return activations_within(cell, _SUPPORTED_ACTS)


def _launch_whole(kernel, B: int, H: int, mask, lengths, *args, **meta) -> None:
    """Launch a whole-width kernel of :mod:`~rnnlab.layers.triton_kernels`: one program per
    16 batch rows, BLOCK_H the next power of two >= H (tl.dot needs blocks >= 16)."""
    block_b, block_h = 16, max(16, 1 << (H - 1).bit_length())
    grid = ((B + block_b - 1) // block_b,)
    _kernels().launch(kernel, grid, mask, lengths, *args, BLOCK_B=block_b, BLOCK_H=block_h, **meta)


def _check(name: str, t: Tensor, shape: tuple[int, ...], like: Tensor) -> None:
    if tuple(t.shape) != shape or t.dtype != like.dtype or t.device != like.device:
        raise ValueError(
            f"`{name}` must be {like.dtype} on {like.device} with shape {shape}, got "
            f"{t.dtype} on {t.device} with shape {tuple(t.shape)}."
        )


def _weight_grad(dxp: Tensor, out: Tensor, h0: Tensor, mask: Tensor | None) -> Tensor:
    """dW_hh = sum over (b, t) of dz_{b,t}^T (m ⊙ h_{b,t-1}): one matmul.

    At padded steps dz is zero, so whatever ``out`` holds there (zeros) does not matter; at
    valid steps h_{t-1} is the previous output (or h0 at t = 0).
    """
    h_prev = torch.cat([h0[:, None], out[:, :-1]], dim=1)  # (B, T, H)
    if mask is not None:
        h_prev = h_prev * mask[:, None]
    G = dxp.size(-1)
    return dxp.reshape(-1, G).t() @ h_prev.reshape(-1, h_prev.size(-1))


class TritonLSTM(torch.autograd.Function):
    """``(xp (B,T,4H), w_hh (4H,H), h0, c0 (B,H), mask (B,H)|None, lengths (B,)|None,
    act, rec_act) -> (out (B,T,H), hT, cT)``; differentiable in xp, w_hh, h0, c0."""

    @staticmethod
    def forward(ctx, xp, w_hh, h0, c0, mask, lengths, act: str, rec_act: str, tiled=None):
        k = _kernels()
        B, T, G = xp.shape
        H = G // 4
        xp, w_hh, h0, c0 = xp.contiguous(), w_hh.contiguous(), h0.contiguous(), c0.contiguous()
        codes = (k.ACT_CODES[act], k.ACT_CODES[rec_act])
        ctx.codes, ctx.tiled = codes, (H > MAX_HIDDEN) if tiled is None else tiled
        if ctx.tiled:
            from . import triton_tiled as tk

            save = any(ctx.needs_input_grad[:4])
            ctx.persistent = tk.persistent_possible(B, H, xp.device)
            out, hT, cT, gates, cs = tk.lstm_fwd_tiled(
                xp, w_hh, h0, c0, mask, lengths, codes, save, ctx.persistent
            )
            if save:
                ctx.save_for_backward(w_hh, h0, c0, mask, lengths, out, gates, cs)
            return out, hT, cT
        out = xp.new_empty(B, T, H)
        hT, cT = xp.new_empty(B, H), xp.new_empty(B, H)
        save = any(ctx.needs_input_grad[:4])
        gates = xp.new_empty(B, T, G) if save else out
        cs = xp.new_empty(B, T, H) if save else out
        _launch_whole(
            k.lstm_fwd_kernel, B, H, mask, lengths,
            xp, w_hh, h0, c0, out, hT, cT, gates, cs, B, T, H,
            SAVE=save, ACT=codes[0], REC_ACT=codes[1],
        )  # fmt: skip
        if save:
            ctx.save_for_backward(w_hh, h0, c0, mask, lengths, out, gates, cs)
        return out, hT, cT

    @staticmethod
    def backward(ctx, dout, dhT, dcT):
        k = _kernels()
        w_hh, h0, c0, mask, lengths, out, gates, cs = ctx.saved_tensors
        B, T, H = out.shape
        dout = torch.zeros_like(out) if dout is None else dout.contiguous()
        dhT = torch.zeros_like(h0) if dhT is None else dhT.contiguous()
        dcT = torch.zeros_like(c0) if dcT is None else dcT.contiguous()
        if ctx.tiled:
            from . import triton_tiled as tk

            dxp, dh0, dc0 = tk.lstm_bwd_tiled(
                w_hh, gates, cs, c0, mask, lengths, dout, dhT, dcT, ctx.codes, ctx.persistent
            )
        else:
            dxp = torch.empty_like(gates)
            dh0, dc0 = torch.empty_like(h0), torch.empty_like(c0)
            _launch_whole(
                k.lstm_bwd_kernel, B, H, mask, lengths,
                w_hh, gates, cs, c0, dout, dhT, dcT, dxp, dh0, dc0, B, T, H,
                ACT=ctx.codes[0], REC_ACT=ctx.codes[1],
            )  # fmt: skip
        dw = _weight_grad(dxp, out, h0, mask) if ctx.needs_input_grad[1] else None
        return dxp, dw, dh0, dc0, None, None, None, None, None


class TritonSimpleRNN(torch.autograd.Function):
    """``(xp (B,T,H), w_hh (H,H), h0 (B,H), mask|None, lengths|None, act) -> (out, hT)``."""

    @staticmethod
    def forward(ctx, xp, w_hh, h0, mask, lengths, act: str):
        k = _kernels()
        B, T, H = xp.shape
        xp, w_hh, h0 = xp.contiguous(), w_hh.contiguous(), h0.contiguous()
        out, hT = xp.new_empty(B, T, H), xp.new_empty(B, H)
        code = k.ACT_CODES[act]
        # Past each length the output is zero but its h' is never needed (dz = 0 there), and
        # at valid steps out == h': the outputs double as the saved activations.
        _launch_whole(
            k.rnn_fwd_kernel, B, H, mask, lengths, xp, w_hh, h0, out, hT, B, T, H, ACT=code
        )
        ctx.save_for_backward(w_hh, h0, mask, lengths, out)
        ctx.code = code
        return out, hT

    @staticmethod
    def backward(ctx, dout, dhT):
        k = _kernels()
        w_hh, h0, mask, lengths, out = ctx.saved_tensors
        B, T, H = out.shape
        dout = torch.zeros_like(out) if dout is None else dout.contiguous()
        dhT = torch.zeros_like(h0) if dhT is None else dhT.contiguous()
        dxp, dh0 = torch.empty_like(out), torch.empty_like(h0)
        _launch_whole(
            k.rnn_bwd_kernel, B, H, mask, lengths,
            w_hh, out, dout, dhT, dxp, dh0, B, T, H, ACT=ctx.code,
        )  # fmt: skip
        dw = _weight_grad(dxp, out, h0, mask) if ctx.needs_input_grad[1] else None
        return dxp, dw, dh0, None, None, None


class TritonGRU(torch.autograd.Function):
    """``(xp (B,T,3H), w_hh (3H,H), b_hh (3H,)|None, h0 (B,H), mask|None, lengths|None,
    reset_after, act, rec_act) -> (out, hT)``; differentiable in xp, w_hh, b_hh, h0.

    ``reset_after=True``: n = act(x_n + r ⊙ (W_hn h̃ + b_hn)); ``False``: n = act(x_n +
    W_hn (r ⊙ h̃)) with no recurrent bias (the one bias is inside xp)."""

    @staticmethod
    def forward(ctx, xp, w_hh, b_hh, h0, mask, lengths, reset_after: bool, act, rec_act):
        k = _kernels()
        B, T, G = xp.shape
        H = G // 3
        xp, w_hh, h0 = xp.contiguous(), w_hh.contiguous(), h0.contiguous()
        out, hT = xp.new_empty(B, T, H), xp.new_empty(B, H)
        save = any(ctx.needs_input_grad[:4])
        gates = xp.new_empty(B, T, 4 * H) if save else out
        codes = (k.ACT_CODES[act], k.ACT_CODES[rec_act])
        bias = xp if b_hh is None else b_hh.contiguous()
        _launch_whole(
            k.gru_fwd_kernel, B, H, mask, lengths,
            xp, w_hh, bias, h0, out, hT, gates, B, T, H,
            RESET_AFTER=reset_after, HAS_BHH=b_hh is not None, SAVE=save,
            ACT=codes[0], REC_ACT=codes[1],
        )  # fmt: skip
        if save:
            ctx.save_for_backward(w_hh, h0, mask, lengths, out, gates)
        ctx.codes, ctx.reset_after = codes, reset_after
        return out, hT

    @staticmethod
    def backward(ctx, dout, dhT):
        k = _kernels()
        w_hh, h0, mask, lengths, out, gates = ctx.saved_tensors
        B, T, H = out.shape
        dout = torch.zeros_like(out) if dout is None else dout.contiguous()
        dhT = torch.zeros_like(h0) if dhT is None else dhT.contiguous()
        dxp, dh0 = out.new_empty(B, T, 3 * H), torch.empty_like(h0)
        drec = torch.empty_like(out) if ctx.reset_after else out
        _launch_whole(
            k.gru_bwd_kernel, B, H, mask, lengths,
            w_hh, gates, out, h0, dout, dhT, dxp, drec, dh0, B, T, H,
            RESET_AFTER=ctx.reset_after, ACT=ctx.codes[0], REC_ACT=ctx.codes[1],
        )  # fmt: skip
        dw = db = None
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            h_in = torch.cat([h0[:, None], out[:, :-1]], dim=1)  # h_{t-1} at valid steps
            if mask is not None:
                h_in = h_in * mask[:, None]
            if ctx.reset_after:
                d_rec = torch.cat([dxp[..., : 2 * H], drec], dim=-1)  # grads of W_hh h̃ + b_hh
                dw = d_rec.reshape(-1, 3 * H).t() @ h_in.reshape(-1, H)
                db = d_rec.sum(dim=(0, 1)) if ctx.needs_input_grad[2] else None
            else:
                q = gates[..., :H] * h_in  # r ⊙ h̃ enters W_hn
                d_rz = dxp[..., : 2 * H].reshape(-1, 2 * H).t() @ h_in.reshape(-1, H)
                d_n = dxp[..., 2 * H :].reshape(-1, H).t() @ q.reshape(-1, H)
                dw = torch.cat([d_rz, d_n])
        return dxp, dw, db, dh0, None, None, None, None, None


def triton_run(cell, x: Tensor, state, lengths: Tensor | None, recurrent_mask: Tensor | None):
    """Run ``cell`` over ``x`` (B, T, I) with the Triton kernels.

    Same contract as :func:`rnnlab.layers.fused.fused_run` (``lengths`` as returned by
    :func:`rnnlab.layers.masking.check_lengths`: None or int64 (B,) on x's device), plus
    ``recurrent_mask`` (B, H) or None. Returns ``(outputs (B, T, H), final_state)``.
    """
    if not triton_supported(cell):
        raise ValueError(f"The Triton kernels do not cover {cell!r}; see triton_supported().")
    B, T, _ = x.shape
    H = cell.hidden_size
    xp = cell.project_inputs(x)  # (B, T, G*H): the input half, one matmul for all steps
    if xp.dtype != torch.float32:
        raise ValueError(f"The Triton kernels compute in float32, got {xp.dtype} (autocast?).")
    if xp.numel() >= 2**31:
        raise ValueError("The Triton kernels index with int32: B * T * G * H must be < 2**31.")
    h0 = state.h if isinstance(cell, LSTMCell) else state
    _check("state", h0, (B, H), xp)
    if recurrent_mask is not None:
        _check("recurrent_mask", recurrent_mask, (B, H), xp)
    if lengths is not None:
        lengths = lengths.to(device=xp.device, dtype=torch.int64)
    if isinstance(cell, LSTMCell):
        _check("state.c", state.c, (B, H), xp)
        out, hT, cT = TritonLSTM.apply(
            xp, cell.weight_hh, state.h, state.c, recurrent_mask, lengths,
            cell.activation, cell.recurrent_activation,
        )  # fmt: skip
        return out, LSTMState(hT, cT)
    if isinstance(cell, GRUCell):
        return TritonGRU.apply(
            xp, cell.weight_hh, cell.bias_hh, state, recurrent_mask, lengths, cell.reset_after,
            cell.activation, cell.recurrent_activation,
        )  # fmt: skip
    return TritonSimpleRNN.apply(
        xp, cell.weight_hh, state, recurrent_mask, lengths, cell.activation
    )
