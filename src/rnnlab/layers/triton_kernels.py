"""Triton kernels of the fused recurrent path: the recurrent half of SimpleRNN and LSTM,
forward and backward, with every time step inside one kernel launch.

Imported lazily by :mod:`rnnlab.layers.triton_rnn` (``triton.jit`` decides at decoration
time whether it compiles for the GPU or runs under the interpreter, ``TRITON_INTERPRET=1``).

Design (one program per batch tile, the whole hidden width in the program):

- The input half ``xp = W_ih x + b`` for all T steps is one matmul done by torch before
  the kernel, exactly as the explicit loop hoists it; its gradient ``dxp`` is what the
  backward kernel writes, and torch turns it into ``dW_ih``, ``db`` and ``dx``.
- The program loads ``W_hh`` once, before its time loop, and keeps it on chip for all T
  steps (the "persistent" idea of Diamos et al. 2016, "Persistent RNNs: Stashing Recurrent
  Weights On-Chip"); the state ``h, c`` never leaves registers between steps; the gate
  math is fused with the recurrent matmul (Appleyard et al. 2016, "Optimizing Performance
  of Recurrent Neural Networks on GPUs", optimisations 1-3).
- The backward kernel runs the same way in reverse time, holding ``W_hh`` again, and
  writes the pre-activation gradients ``dz_t`` (= ``dxp_t``) for every step; ``dW_hh =
  sum_t dz_t^T (m ⊙ h_{t-1})`` is then ONE (G*H, B*T) x (B*T, H) matmul in torch, as cuDNN
  does its weight gradient after the data gradient.
- Semantics are those of :mod:`rnnlab.layers.recurrent`: ``lengths`` freeze the state and
  zero the output past each length; one recurrent-dropout mask ``m`` (B, H) multiplies
  ``h`` before the recurrent matmul; activations are compile-time constants (codes in
  :data:`ACT_CODES`); derivatives are taken from the activations' outputs, matching
  torch's autograd (hard_sigmoid and relu have zero slope at their kinks, as torch's).

Limits: a program holds a (BLOCK_H x BLOCK_H) block per gate, so this layout is meant for
small H (``triton_rnn.MAX_HIDDEN`` = 64: at 128 the LSTM kernels need more shared memory
than an sm_90 block has, found by compiling them for sm_90). Wider LSTMs run the unit-tiled
kernels of
:mod:`rnnlab.layers.triton_tiled`, which split the weights over programs and meet at a
grid-wide barrier per step. ``tl.dot`` is called with ``input_precision="ieee"`` so fp32
stays fp32 (no TF32).
"""

from __future__ import annotations

import triton
import triton.language as tl

ACT_CODES = {"tanh": 0, "sigmoid": 1, "hard_sigmoid": 2, "softsign": 3, "relu": 4, "linear": 5}


@triton.jit
def _act(x, KIND: tl.constexpr):
    if KIND == 0:  # tanh, written with exp(-2|x|) so large |x| cannot overflow
        e = tl.exp(-2.0 * tl.abs(x))
        th = (1.0 - e) / (1.0 + e)
        y = tl.where(x < 0, -th, th)
    elif KIND == 1:
        y = 1.0 / (1.0 + tl.exp(-x))  # as tl.sigmoid, which is a jit function the
        # interpreter cannot call when triton was imported before TRITON_INTERPRET was set
    elif KIND == 2:  # Keras 3 hard_sigmoid: relu6(x + 3) / 6
        y = tl.minimum(tl.maximum(x + 3.0, 0.0), 6.0) / 6.0
    elif KIND == 3:
        y = x / (1.0 + tl.abs(x))
    elif KIND == 4:
        y = tl.maximum(x, 0.0)
    else:
        y = x
    return y


@triton.jit
def _dact(y, KIND: tl.constexpr):
    """Derivative of activation KIND, written in terms of its output ``y``."""
    if KIND == 0:
        d = 1.0 - y * y
    elif KIND == 1:
        d = y * (1.0 - y)
    elif KIND == 2:
        d = tl.where((y > 0.0) & (y < 1.0), 1.0 / 6.0, 0.0)
    elif KIND == 3:
        a = 1.0 - tl.abs(y)  # = 1 / (1 + |x|)
        d = a * a
    elif KIND == 4:
        d = tl.where(y > 0.0, 1.0, 0.0)
    else:
        d = y * 0.0 + 1.0
    return d


@triton.jit
def _dot(a, b):
    return tl.dot(a, b, input_precision="ieee")


@triton.jit
def lstm_fwd_kernel(
    xp_ptr, w_ptr, h0_ptr, c0_ptr, m_ptr, len_ptr,  # inputs
    out_ptr, hT_ptr, cT_ptr, gates_ptr, cs_ptr,  # outputs (gates, cs saved for backward)
    B, T, H,
    HAS_MASK: tl.constexpr, HAS_LEN: tl.constexpr, SAVE: tl.constexpr,
    ACT: tl.constexpr, REC_ACT: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr,
):  # fmt: skip
    rb = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)
    rh = tl.arange(0, BLOCK_H)
    bmask = rb < B
    hmask = rh < H
    bh_mask = bmask[:, None] & hmask[None, :]
    bh = rb[:, None] * H + rh[None, :]
    # W_g^T blocks, held for all T steps: wt[k, j] = W_hh[g*H + j, k]
    wt_off = rh[None, :] * H + rh[:, None]
    w_mask = hmask[:, None] & hmask[None, :]
    w_i = tl.load(w_ptr + wt_off, mask=w_mask, other=0.0)
    w_f = tl.load(w_ptr + H * H + wt_off, mask=w_mask, other=0.0)
    w_g = tl.load(w_ptr + 2 * H * H + wt_off, mask=w_mask, other=0.0)
    w_o = tl.load(w_ptr + 3 * H * H + wt_off, mask=w_mask, other=0.0)
    h = tl.load(h0_ptr + bh, mask=bh_mask, other=0.0)
    c = tl.load(c0_ptr + bh, mask=bh_mask, other=0.0)
    if HAS_MASK:
        m = tl.load(m_ptr + bh, mask=bh_mask, other=0.0)
    if HAS_LEN:
        L = tl.load(len_ptr + rb, mask=bmask, other=0)
    G = 4 * H
    for t in range(T):
        if HAS_MASK:
            h_in = h * m
        else:
            h_in = h
        g_off = rb[:, None] * (T * G) + t * G + rh[None, :]
        zi = tl.load(xp_ptr + g_off, mask=bh_mask, other=0.0) + _dot(h_in, w_i)
        zf = tl.load(xp_ptr + g_off + H, mask=bh_mask, other=0.0) + _dot(h_in, w_f)
        zg = tl.load(xp_ptr + g_off + 2 * H, mask=bh_mask, other=0.0) + _dot(h_in, w_g)
        zo = tl.load(xp_ptr + g_off + 3 * H, mask=bh_mask, other=0.0) + _dot(h_in, w_o)
        i = _act(zi, REC_ACT)
        f = _act(zf, REC_ACT)
        g = _act(zg, ACT)
        o = _act(zo, REC_ACT)
        c_new = f * c + i * g
        h_new = o * _act(c_new, ACT)
        if SAVE:
            tl.store(gates_ptr + g_off, i, mask=bh_mask)
            tl.store(gates_ptr + g_off + H, f, mask=bh_mask)
            tl.store(gates_ptr + g_off + 2 * H, g, mask=bh_mask)
            tl.store(gates_ptr + g_off + 3 * H, o, mask=bh_mask)
            tl.store(cs_ptr + rb[:, None] * (T * H) + t * H + rh[None, :], c_new, mask=bh_mask)
        if HAS_LEN:
            keep = (t < L)[:, None]
            c = tl.where(keep, c_new, c)
            h = tl.where(keep, h_new, h)
            out = tl.where(keep, h_new, 0.0)
        else:
            c = c_new
            h = h_new
            out = h_new
        tl.store(out_ptr + rb[:, None] * (T * H) + t * H + rh[None, :], out, mask=bh_mask)
    tl.store(hT_ptr + bh, h, mask=bh_mask)
    tl.store(cT_ptr + bh, c, mask=bh_mask)


@triton.jit
def lstm_bwd_kernel(
    w_ptr, gates_ptr, cs_ptr, c0_ptr, m_ptr, len_ptr, dout_ptr, dhT_ptr, dcT_ptr,  # inputs
    dxp_ptr, dh0_ptr, dc0_ptr,  # outputs
    B, T, H,
    HAS_MASK: tl.constexpr, HAS_LEN: tl.constexpr,
    ACT: tl.constexpr, REC_ACT: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr,
):  # fmt: skip
    rb = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)
    rh = tl.arange(0, BLOCK_H)
    bmask = rb < B
    hmask = rh < H
    bh_mask = bmask[:, None] & hmask[None, :]
    bh = rb[:, None] * H + rh[None, :]
    # W_g blocks, held for all T steps: w[j, k] = W_hh[g*H + j, k]
    w_off = rh[:, None] * H + rh[None, :]
    w_mask = hmask[:, None] & hmask[None, :]
    w_i = tl.load(w_ptr + w_off, mask=w_mask, other=0.0)
    w_f = tl.load(w_ptr + H * H + w_off, mask=w_mask, other=0.0)
    w_g = tl.load(w_ptr + 2 * H * H + w_off, mask=w_mask, other=0.0)
    w_o = tl.load(w_ptr + 3 * H * H + w_off, mask=w_mask, other=0.0)
    dh = tl.load(dhT_ptr + bh, mask=bh_mask, other=0.0)
    dc = tl.load(dcT_ptr + bh, mask=bh_mask, other=0.0)
    if HAS_MASK:
        m = tl.load(m_ptr + bh, mask=bh_mask, other=0.0)
    if HAS_LEN:
        L = tl.load(len_ptr + rb, mask=bmask, other=0)
    G = 4 * H
    for tt in range(T):
        t = T - 1 - tt
        g_off = rb[:, None] * (T * G) + t * G + rh[None, :]
        s_off = rb[:, None] * (T * H) + t * H + rh[None, :]
        i = tl.load(gates_ptr + g_off, mask=bh_mask, other=0.0)
        f = tl.load(gates_ptr + g_off + H, mask=bh_mask, other=0.0)
        g = tl.load(gates_ptr + g_off + 2 * H, mask=bh_mask, other=0.0)
        o = tl.load(gates_ptr + g_off + 3 * H, mask=bh_mask, other=0.0)
        c_t = tl.load(cs_ptr + s_off, mask=bh_mask, other=0.0)
        t_b = rb * 0 + t  # t as a (BLOCK_B,) tensor, so the masks below are tensors
        c_prev = tl.load(cs_ptr + s_off - H, mask=bh_mask & (t_b > 0)[:, None], other=0.0)
        c_prev += tl.load(c0_ptr + bh, mask=bh_mask & (t_b == 0)[:, None], other=0.0)
        dout = tl.load(dout_ptr + s_off, mask=bh_mask, other=0.0)
        if HAS_LEN:
            valid = (t < L)[:, None]
            dout = tl.where(valid, dout, 0.0)
        dh_t = dh + dout
        a_c = _act(c_t, ACT)
        dc_t = dc + dh_t * o * _dact(a_c, ACT)
        dzi = dc_t * g * _dact(i, REC_ACT)
        dzf = dc_t * c_prev * _dact(f, REC_ACT)
        dzg = dc_t * i * _dact(g, ACT)
        dzo = dh_t * a_c * _dact(o, REC_ACT)
        if HAS_LEN:
            dzi = tl.where(valid, dzi, 0.0)
            dzf = tl.where(valid, dzf, 0.0)
            dzg = tl.where(valid, dzg, 0.0)
            dzo = tl.where(valid, dzo, 0.0)
        tl.store(dxp_ptr + g_off, dzi, mask=bh_mask)
        tl.store(dxp_ptr + g_off + H, dzf, mask=bh_mask)
        tl.store(dxp_ptr + g_off + 2 * H, dzg, mask=bh_mask)
        tl.store(dxp_ptr + g_off + 3 * H, dzo, mask=bh_mask)
        dh_prev = _dot(dzi, w_i) + _dot(dzf, w_f) + _dot(dzg, w_g) + _dot(dzo, w_o)
        if HAS_MASK:
            dh_prev = dh_prev * m
        dc_prev = dc_t * f
        if HAS_LEN:
            dh = tl.where(valid, dh_prev, dh)
            dc = tl.where(valid, dc_prev, dc)
        else:
            dh = dh_prev
            dc = dc_prev
    tl.store(dh0_ptr + bh, dh, mask=bh_mask)
    tl.store(dc0_ptr + bh, dc, mask=bh_mask)


@triton.jit
def rnn_fwd_kernel(
    xp_ptr, w_ptr, h0_ptr, m_ptr, len_ptr, out_ptr, hT_ptr, hs_ptr,
    B, T, H,
    HAS_MASK: tl.constexpr, HAS_LEN: tl.constexpr, SAVE: tl.constexpr, ACT: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr,
):  # fmt: skip
    """SimpleRNN: h' = act(xp + W_hh (m ⊙ h)); ``hs`` saves every step's h' for backward."""
    rb = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)
    rh = tl.arange(0, BLOCK_H)
    bmask = rb < B
    hmask = rh < H
    bh_mask = bmask[:, None] & hmask[None, :]
    bh = rb[:, None] * H + rh[None, :]
    w = tl.load(
        w_ptr + rh[None, :] * H + rh[:, None], mask=hmask[:, None] & hmask[None, :], other=0.0
    )
    h = tl.load(h0_ptr + bh, mask=bh_mask, other=0.0)
    if HAS_MASK:
        m = tl.load(m_ptr + bh, mask=bh_mask, other=0.0)
    if HAS_LEN:
        L = tl.load(len_ptr + rb, mask=bmask, other=0)
    for t in range(T):
        if HAS_MASK:
            h_in = h * m
        else:
            h_in = h
        s_off = rb[:, None] * (T * H) + t * H + rh[None, :]
        h_new = _act(tl.load(xp_ptr + s_off, mask=bh_mask, other=0.0) + _dot(h_in, w), ACT)
        if SAVE:
            tl.store(hs_ptr + s_off, h_new, mask=bh_mask)
        if HAS_LEN:
            keep = (t < L)[:, None]
            h = tl.where(keep, h_new, h)
            out = tl.where(keep, h_new, 0.0)
        else:
            h = h_new
            out = h_new
        tl.store(out_ptr + s_off, out, mask=bh_mask)
    tl.store(hT_ptr + bh, h, mask=bh_mask)


@triton.jit
def rnn_bwd_kernel(
    w_ptr, hs_ptr, m_ptr, len_ptr, dout_ptr, dhT_ptr, dxp_ptr, dh0_ptr,
    B, T, H,
    HAS_MASK: tl.constexpr, HAS_LEN: tl.constexpr, ACT: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr,
):  # fmt: skip
    rb = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)
    rh = tl.arange(0, BLOCK_H)
    bmask = rb < B
    hmask = rh < H
    bh_mask = bmask[:, None] & hmask[None, :]
    bh = rb[:, None] * H + rh[None, :]
    w = tl.load(
        w_ptr + rh[:, None] * H + rh[None, :], mask=hmask[:, None] & hmask[None, :], other=0.0
    )
    dh = tl.load(dhT_ptr + bh, mask=bh_mask, other=0.0)
    if HAS_MASK:
        m = tl.load(m_ptr + bh, mask=bh_mask, other=0.0)
    if HAS_LEN:
        L = tl.load(len_ptr + rb, mask=bmask, other=0)
    for tt in range(T):
        t = T - 1 - tt
        s_off = rb[:, None] * (T * H) + t * H + rh[None, :]
        dout = tl.load(dout_ptr + s_off, mask=bh_mask, other=0.0)
        y = tl.load(hs_ptr + s_off, mask=bh_mask, other=0.0)
        dz = (dh + dout) * _dact(y, ACT)
        if HAS_LEN:
            valid = (t < L)[:, None]
            dz = tl.where(valid, dz, 0.0)
        tl.store(dxp_ptr + s_off, dz, mask=bh_mask)
        dh_prev = _dot(dz, w)
        if HAS_MASK:
            dh_prev = dh_prev * m
        if HAS_LEN:
            dh = tl.where(valid, dh_prev, dh)
        else:
            dh = dh_prev
    tl.store(dh0_ptr + bh, dh, mask=bh_mask)


@triton.jit
def gru_fwd_kernel(
    xp_ptr, w_ptr, bhh_ptr, h0_ptr, m_ptr, len_ptr, out_ptr, hT_ptr, gates_ptr,
    B, T, H,
    RESET_AFTER: tl.constexpr, HAS_BHH: tl.constexpr, HAS_MASK: tl.constexpr,
    HAS_LEN: tl.constexpr, SAVE: tl.constexpr, ACT: tl.constexpr, REC_ACT: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr,
):  # fmt: skip
    """GRU, gates r, z, n; saves (r, z, n, W_hn h̃ + b_hn) per step in ``gates`` (B,T,4H)."""
    rb = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)
    rh = tl.arange(0, BLOCK_H)
    bmask = rb < B
    hmask = rh < H
    bh_mask = bmask[:, None] & hmask[None, :]
    bh = rb[:, None] * H + rh[None, :]
    wt_off = rh[None, :] * H + rh[:, None]
    w_mask = hmask[:, None] & hmask[None, :]
    w_r = tl.load(w_ptr + wt_off, mask=w_mask, other=0.0)
    w_z = tl.load(w_ptr + H * H + wt_off, mask=w_mask, other=0.0)
    w_n = tl.load(w_ptr + 2 * H * H + wt_off, mask=w_mask, other=0.0)
    if HAS_BHH:
        b_r = tl.load(bhh_ptr + rh, mask=hmask, other=0.0)[None, :]
        b_z = tl.load(bhh_ptr + H + rh, mask=hmask, other=0.0)[None, :]
        b_n = tl.load(bhh_ptr + 2 * H + rh, mask=hmask, other=0.0)[None, :]
    h = tl.load(h0_ptr + bh, mask=bh_mask, other=0.0)
    if HAS_MASK:
        m = tl.load(m_ptr + bh, mask=bh_mask, other=0.0)
    if HAS_LEN:
        L = tl.load(len_ptr + rb, mask=bmask, other=0)
    for t in range(T):
        if HAS_MASK:
            h_in = h * m
        else:
            h_in = h
        x_off = rb[:, None] * (T * 3 * H) + t * (3 * H) + rh[None, :]
        zr = tl.load(xp_ptr + x_off, mask=bh_mask, other=0.0) + _dot(h_in, w_r)
        zz = tl.load(xp_ptr + x_off + H, mask=bh_mask, other=0.0) + _dot(h_in, w_z)
        xn = tl.load(xp_ptr + x_off + 2 * H, mask=bh_mask, other=0.0)
        if HAS_BHH:
            zr += b_r
            zz += b_z
        r = _act(zr, REC_ACT)
        z = _act(zz, REC_ACT)
        if RESET_AFTER:
            hn = _dot(h_in, w_n)
            if HAS_BHH:
                hn += b_n
            n = _act(xn + r * hn, ACT)
        else:
            hn = r * 0.0
            n = _act(xn + _dot(r * h_in, w_n), ACT)
        h_new = (1.0 - z) * n + z * h
        if SAVE:
            g_off = rb[:, None] * (T * 4 * H) + t * (4 * H) + rh[None, :]
            tl.store(gates_ptr + g_off, r, mask=bh_mask)
            tl.store(gates_ptr + g_off + H, z, mask=bh_mask)
            tl.store(gates_ptr + g_off + 2 * H, n, mask=bh_mask)
            tl.store(gates_ptr + g_off + 3 * H, hn, mask=bh_mask)
        if HAS_LEN:
            keep = (t < L)[:, None]
            h = tl.where(keep, h_new, h)
            out = tl.where(keep, h_new, 0.0)
        else:
            h = h_new
            out = h_new
        tl.store(out_ptr + rb[:, None] * (T * H) + t * H + rh[None, :], out, mask=bh_mask)
    tl.store(hT_ptr + bh, h, mask=bh_mask)


@triton.jit
def gru_bwd_kernel(
    w_ptr, gates_ptr, out_ptr, h0_ptr, m_ptr, len_ptr, dout_ptr, dhT_ptr,
    dxp_ptr, drec_ptr, dh0_ptr,
    B, T, H,
    RESET_AFTER: tl.constexpr, HAS_MASK: tl.constexpr, HAS_LEN: tl.constexpr,
    ACT: tl.constexpr, REC_ACT: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr,
):  # fmt: skip
    """Writes dxp (B,T,3H) and, for reset_after, ``drec`` (B,T,H): the gradient of
    ``W_hn h̃ + b_hn`` (r ⊙ dn), from which torch forms dW_hn and db_hn."""
    rb = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)
    rh = tl.arange(0, BLOCK_H)
    bmask = rb < B
    hmask = rh < H
    bh_mask = bmask[:, None] & hmask[None, :]
    bh = rb[:, None] * H + rh[None, :]
    w_off = rh[:, None] * H + rh[None, :]
    w_mask = hmask[:, None] & hmask[None, :]
    w_r = tl.load(w_ptr + w_off, mask=w_mask, other=0.0)
    w_z = tl.load(w_ptr + H * H + w_off, mask=w_mask, other=0.0)
    w_n = tl.load(w_ptr + 2 * H * H + w_off, mask=w_mask, other=0.0)
    dh = tl.load(dhT_ptr + bh, mask=bh_mask, other=0.0)
    if HAS_MASK:
        m = tl.load(m_ptr + bh, mask=bh_mask, other=0.0)
    if HAS_LEN:
        L = tl.load(len_ptr + rb, mask=bmask, other=0)
    for tt in range(T):
        t = T - 1 - tt
        g_off = rb[:, None] * (T * 4 * H) + t * (4 * H) + rh[None, :]
        x_off = rb[:, None] * (T * 3 * H) + t * (3 * H) + rh[None, :]
        s_off = rb[:, None] * (T * H) + t * H + rh[None, :]
        r = tl.load(gates_ptr + g_off, mask=bh_mask, other=0.0)
        z = tl.load(gates_ptr + g_off + H, mask=bh_mask, other=0.0)
        n = tl.load(gates_ptr + g_off + 2 * H, mask=bh_mask, other=0.0)
        t_b = rb * 0 + t
        h_prev = tl.load(out_ptr + s_off - H, mask=bh_mask & (t_b > 0)[:, None], other=0.0)
        h_prev += tl.load(h0_ptr + bh, mask=bh_mask & (t_b == 0)[:, None], other=0.0)
        dout = tl.load(dout_ptr + s_off, mask=bh_mask, other=0.0)
        if HAS_LEN:
            valid = (t < L)[:, None]
            dout = tl.where(valid, dout, 0.0)
        dh_t = dh + dout
        dan = dh_t * (1.0 - z) * _dact(n, ACT)
        daz = dh_t * (h_prev - n) * _dact(z, REC_ACT)
        if RESET_AFTER:
            hn = tl.load(gates_ptr + g_off + 3 * H, mask=bh_mask, other=0.0)
            dar = dan * hn * _dact(r, REC_ACT)
            dhn = dan * r
            if HAS_LEN:
                dhn = tl.where(valid, dhn, 0.0)
            dh_in = _dot(dhn, w_n)
        else:
            if HAS_MASK:
                h_in = h_prev * m
            else:
                h_in = h_prev
            dq = _dot(dan, w_n)  # q = r ⊙ h̃ enters W_hn
            dar = dq * h_in * _dact(r, REC_ACT)
            dh_in = dq * r
        if HAS_LEN:
            dar = tl.where(valid, dar, 0.0)
            daz = tl.where(valid, daz, 0.0)
            dan = tl.where(valid, dan, 0.0)
        tl.store(dxp_ptr + x_off, dar, mask=bh_mask)
        tl.store(dxp_ptr + x_off + H, daz, mask=bh_mask)
        tl.store(dxp_ptr + x_off + 2 * H, dan, mask=bh_mask)
        if RESET_AFTER:
            tl.store(drec_ptr + s_off, dhn, mask=bh_mask)
        dh_in += _dot(dar, w_r) + _dot(daz, w_z)
        if HAS_MASK:
            dh_in = dh_in * m
        dh_prev = dh_t * z + dh_in
        if HAS_LEN:
            dh = tl.where(valid, dh_prev, dh)
        else:
            dh = dh_prev
    tl.store(dh0_ptr + bh, dh, mask=bh_mask)
