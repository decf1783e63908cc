"""LSTM kernels tiled over the hidden units, for widths (64 < H <= 256, up to
``triton_rnn.MAX_HIDDEN_TILED``) whose recurrent weights do not fit one program: the layout
of Diamos et al. 2016 ("Persistent RNNs: Stashing Recurrent Weights On-Chip"), in Triton.

Program (batch tile, unit tile U) owns BLOCK_U hidden units and holds, for all its steps,
the slice of ``W_hh`` those units need: rows ``g*H + U`` of every gate g in the forward
pass (z_U = h W[U]^T), columns ``U`` in the backward pass (dh_U = dz W[:, U]). The state
is exchanged through global memory (L2 on a GPU) once per step:

- forward, step t: read the whole h_{t-1} (B, H) from ``hbuf[t % 2]``, compute the four
  gates and c, h of the own units, write them to ``hbuf[(t + 1) % 2]`` (double buffered,
  so one grid-wide barrier per step suffices);
- backward, iteration s (t = T - 1 - s): read all of dz_{t+1} (B, 4H) that every program
  wrote to ``dxp`` in the previous iteration, form dh_U = (dz_{t+1} W[:, U]) ⊙ m_U, then
  compute and write the own units' dz_t; T + 1 iterations, one barrier after each.

Two ways to put the barrier between steps, one code path:

- ``PERSISTENT=True`` (CUDA): ONE launch runs every step; programs meet at a grid-wide
  barrier (an atomic counter in global memory, release/acquire). Every program must be
  resident at once, so the grid must not exceed the number of SMs (checked by the caller).
  This mode cannot run under the Triton interpreter, which runs programs one after another
  (a spinning barrier would never open); it is verified only by the ``gpu`` tests.
- ``PERSISTENT=False``: one launch per step, the launch boundary being the barrier; the
  state the persistent mode keeps in registers (c, dh, dc of the own units) goes through
  the ``cT`` / ``dh_buf`` / ``dc_buf`` buffers instead. This is what the interpreter
  tests run, so the tiling, the exchange and the equations are verified on CPU; only the
  barrier itself is not.

Resources (compiled for sm_90 with Triton 3.9, num_warps 4, never run on a GPU): at H = 256
the persistent kernels use 164 / 156 registers, no spills, 80 / 128 KB shared memory
(forward / backward); at H = 512 the persistent backward needs 256 KB, over an H100/H200
block's 227 KB, so ``triton_rnn.MAX_HIDDEN_TILED`` is 256 until the backward's W slice and
dz staging are split over K chunks.

Same semantics as :mod:`rnnlab.layers.triton_kernels`, and the same gate equations: both
kernels call its :func:`~rnnlab.layers.triton_kernels._lstm_step` and
:func:`~rnnlab.layers.triton_kernels._lstm_step_bwd`, so only the tiling and the exchange
are written here; ``tl.dot`` in ieee fp32.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .triton_kernels import (
    _dot,
    _drop,
    _keep_past,
    _lstm_prologue,
    _lstm_step,
    _lstm_step_bwd,
    _store4,
    _zero_past,
    launch,
)

BLOCK_U = 16  # hidden units per program (tl.dot needs >= 16)
BLOCK_B = 16


@triton.jit
def _grid_sync(sync_ptr, target):
    """Wait until ``target`` arrivals have been counted at ``sync_ptr`` (CUDA only)."""
    tl.debug_barrier()
    tl.atomic_add(sync_ptr, 1, sem="release")
    count = tl.atomic_add(sync_ptr, 0, sem="acquire")
    while count < target:
        count = tl.atomic_add(sync_ptr, 0, sem="acquire")
    tl.debug_barrier()


@triton.jit
def _unit_tile(B, H, BLOCK_B: tl.constexpr, BLOCK_U: tl.constexpr, BLOCK_K: tl.constexpr):
    """Tile prologue of the unit-tiled kernels: rows ``rb``, own units ``ru``, all units
    ``rk``; the (rows x own units) and (rows x all units) masks and offsets into (B, H)."""
    rb = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)
    ru = tl.program_id(1) * BLOCK_U + tl.arange(0, BLOCK_U)
    rk = tl.arange(0, BLOCK_K)
    bmask = rb < B
    umask = ru < H
    kmask = rk < H
    bu_mask = bmask[:, None] & umask[None, :]
    bk_mask = bmask[:, None] & kmask[None, :]
    bu = rb[:, None] * H + ru[None, :]
    bk = rb[:, None] * H + rk[None, :]
    return rb, ru, rk, bmask, umask, kmask, bu_mask, bk_mask, bu, bk


@triton.jit
def lstm_fwd_tiled_kernel(
    m_ptr, len_ptr, xp_ptr, w_ptr, hbuf_ptr, out_ptr, c_ptr, gates_ptr, cs_ptr, sync_ptr,
    B, T, H, t_start, t_stop,
    HAS_MASK: tl.constexpr, HAS_LEN: tl.constexpr, PERSISTENT: tl.constexpr,
    SAVE: tl.constexpr, ACT: tl.constexpr, REC_ACT: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_U: tl.constexpr, BLOCK_K: tl.constexpr,
):  # fmt: skip
    """Steps t in [t_start, t_stop) of the LSTM forward (:func:`_lstm_step`) for the own
    units; ``c`` (B, H) holds c_{t_start} on entry and c_{t_stop} after."""
    rb, ru, rk, bmask, umask, kmask, bu_mask, bk_mask, bu, bk = _unit_tile(
        B, H, BLOCK_B, BLOCK_U, BLOCK_K
    )
    # wt_g[k, u] = W_hh[g*H + u, k]: the own units' rows, held for every step
    wt_off = ru[None, :] * H + rk[:, None]
    w_mask = kmask[:, None] & umask[None, :]
    w_i, w_f, w_g, w_o, m, L = _lstm_prologue(w_ptr, H, wt_off, w_mask, m_ptr, bk, bk_mask,
                                              len_ptr, rb, bmask, HAS_MASK, HAS_LEN)  # fmt: skip
    c = tl.load(c_ptr + bu, mask=bu_mask, other=0.0)
    G = 4 * H
    n_prog = tl.num_programs(0) * tl.num_programs(1)
    for t in range(t_start, t_stop):
        src = hbuf_ptr + (t % 2) * B * H
        dst = hbuf_ptr + ((t + 1) % 2) * B * H
        # .cg: read through L2, never a stale L1 line of another program's write
        h_full = tl.load(src + bk, mask=bk_mask, other=0.0, cache_modifier=".cg")
        h_own = tl.load(src + bu, mask=bu_mask, other=0.0, cache_modifier=".cg")
        g_off = rb[:, None] * (T * G) + t * G + ru[None, :]
        s_off = rb[:, None] * (T * H) + t * H + ru[None, :]
        i, f, g, o, c_new, h_new = _lstm_step(
            xp_ptr, g_off, bu_mask, H, _drop(h_full, m, HAS_MASK), w_i, w_f, w_g, w_o, c,
            ACT, REC_ACT,
        )  # fmt: skip
        if SAVE:
            _store4(gates_ptr, g_off, bu_mask, H, i, f, g, o)
            tl.store(cs_ptr + s_off, c_new, mask=bu_mask)
        c = _keep_past(c_new, c, t, L, HAS_LEN)
        tl.store(out_ptr + s_off, _zero_past(h_new, t, L, HAS_LEN), mask=bu_mask)
        tl.store(dst + bu, _keep_past(h_new, h_own, t, L, HAS_LEN), mask=bu_mask)
        if PERSISTENT:
            _grid_sync(sync_ptr, (t + 1 - t_start) * n_prog)
    tl.store(c_ptr + bu, c, mask=bu_mask)


@triton.jit
def lstm_bwd_tiled_kernel(
    m_ptr, len_ptr, w_ptr, gates_ptr, cs_ptr, c0_ptr, dout_ptr, dxp_ptr, dh_ptr, dc_ptr,
    sync_ptr,
    B, T, H, s_start, s_stop,
    HAS_MASK: tl.constexpr, HAS_LEN: tl.constexpr, PERSISTENT: tl.constexpr,
    ACT: tl.constexpr, REC_ACT: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_U: tl.constexpr, BLOCK_K: tl.constexpr,
):  # fmt: skip
    """Iterations s in [s_start, s_stop) of 0..T; ``dh``/``dc`` (B, H) hold dh_T, dc_T on
    entry of s = 0 and dh_0, dc_0 after s = T. Iteration s (t = T - 1 - s) first forms
    the own units' dh_t = (dz_{t+1} W_hh[:, U]) ⊙ m_U from every unit's dz_{t+1}, then the
    own units' dz_t (:func:`_lstm_step_bwd`)."""
    rb, ru, rk, bmask, umask, kmask, bu_mask, bk_mask, bu, bk = _unit_tile(
        B, H, BLOCK_B, BLOCK_U, BLOCK_K
    )
    # w_g[j, u] = W_hh[g*H + j, u]: the own units' columns, held for every step
    w_off = rk[:, None] * H + ru[None, :]
    w_mask = kmask[:, None] & umask[None, :]
    w_i, w_f, w_g, w_o, m, L = _lstm_prologue(w_ptr, H, w_off, w_mask, m_ptr, bu, bu_mask,
                                              len_ptr, rb, bmask, HAS_MASK, HAS_LEN)  # fmt: skip
    dh = tl.load(dh_ptr + bu, mask=bu_mask, other=0.0)
    dc = tl.load(dc_ptr + bu, mask=bu_mask, other=0.0)
    G = 4 * H
    n_prog = tl.num_programs(0) * tl.num_programs(1)
    for s in range(s_start, s_stop):
        t = T - 1 - s
        t_b = rb * 0 + t
        if s > 0:  # dh_t (own units) from every unit's dz_{t+1}
            x_full = rb[:, None] * (T * G) + (t + 1) * G + rk[None, :]
            dzi = tl.load(dxp_ptr + x_full, mask=bk_mask, other=0.0, cache_modifier=".cg")
            dzf = tl.load(dxp_ptr + x_full + H, mask=bk_mask, other=0.0, cache_modifier=".cg")
            dzg = tl.load(dxp_ptr + x_full + 2 * H, mask=bk_mask, other=0.0, cache_modifier=".cg")
            dzo = tl.load(dxp_ptr + x_full + 3 * H, mask=bk_mask, other=0.0, cache_modifier=".cg")
            dh_prev = _dot(dzi, w_i) + _dot(dzf, w_f) + _dot(dzg, w_g) + _dot(dzo, w_o)
            dh = _keep_past(_drop(dh_prev, m, HAS_MASK), dh, t + 1, L, HAS_LEN)
        if s < T:  # dz_t of the own units, written to dxp for every program to read
            g_off = rb[:, None] * (T * G) + t * G + ru[None, :]
            s_off = rb[:, None] * (T * H) + t * H + ru[None, :]
            _, _, _, _, dc = _lstm_step_bwd(
                gates_ptr, cs_ptr, c0_ptr, dout_ptr, dxp_ptr, g_off, s_off, bu, bu_mask, t,
                t_b, L, dh, dc, H, HAS_LEN, ACT, REC_ACT,
            )  # fmt: skip
        if PERSISTENT:
            _grid_sync(sync_ptr, (s + 1 - s_start) * n_prog)
    tl.store(dh_ptr + bu, dh, mask=bu_mask)
    tl.store(dc_ptr + bu, dc, mask=bu_mask)


def _grid(B: int, H: int) -> tuple[int, int]:
    return (triton.cdiv(B, BLOCK_B), triton.cdiv(H, BLOCK_U))


def persistent_possible(B: int, H: int, device: torch.device) -> bool:
    """Whether one launch can hold every program resident (one per SM, conservatively)."""
    if device.type != "cuda":
        return False
    gb, gu = _grid(B, H)
    return gb * gu <= torch.cuda.get_device_properties(device).multi_processor_count


def lstm_fwd_tiled(xp, w_hh, h0, c0, mask, lengths, codes, save: bool, persistent: bool):
    """Runs the forward kernel(s); returns out, hT, cT, gates, cs (the last two if save)."""
    B, T, G = xp.shape
    H = G // 4
    out = xp.new_empty(B, T, H)
    hbuf = xp.new_empty(2, B, H)
    hbuf[0] = h0
    c = c0.clone()
    gates = xp.new_empty(B, T, G) if save else out
    cs = xp.new_empty(B, T, H) if save else out
    sync = torch.zeros(1, dtype=torch.int32, device=xp.device)
    spans = [(0, T)] if persistent else [(t, t + 1) for t in range(T)]
    for t0, t1 in spans:
        launch(
            lstm_fwd_tiled_kernel, _grid(B, H), mask, lengths,
            xp, w_hh, hbuf, out, c, gates, cs, sync, B, T, H, t0, t1,
            PERSISTENT=persistent, SAVE=save, ACT=codes[0], REC_ACT=codes[1],
            BLOCK_B=BLOCK_B, BLOCK_U=BLOCK_U, BLOCK_K=max(16, triton.next_power_of_2(H)),
        )  # fmt: skip
    return out, hbuf[T % 2].clone(), c, gates, cs


def lstm_bwd_tiled(w_hh, gates, cs, c0, mask, lengths, dout, dhT, dcT, codes, persistent):
    """Runs the backward kernel(s); returns dxp (B, T, 4H), dh0, dc0."""
    B, T, G = gates.shape
    H = G // 4
    dxp = torch.empty_like(gates)
    dh, dc = dhT.clone(), dcT.clone()
    sync = torch.zeros(1, dtype=torch.int32, device=gates.device)
    spans = [(0, T + 1)] if persistent else [(s, s + 1) for s in range(T + 1)]
    for s0, s1 in spans:
        launch(
            lstm_bwd_tiled_kernel, _grid(B, H), mask, lengths,
            w_hh, gates, cs, c0, dout, dxp, dh, dc, sync, B, T, H, s0, s1,
            PERSISTENT=persistent, ACT=codes[0], REC_ACT=codes[1],
            BLOCK_B=BLOCK_B, BLOCK_U=BLOCK_U, BLOCK_K=max(16, triton.next_power_of_2(H)),
        )  # fmt: skip
    return dxp, dh, dc
