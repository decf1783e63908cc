"""Triton kernels of the fused recurrent path: the recurrent half of SimpleRNN, LSTM and GRU,
forward and backward, with every time step inside one kernel launch; and the ``@triton.jit``
helpers every kernel shares (those of :mod:`rnnlab.layers.triton_tiled` too), so each gate
equation is written once.

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

Every kernel takes the recurrent-dropout mask and the lengths as its first two pointers
(a dummy where absent, with ``HAS_MASK`` / ``HAS_LEN`` false), so :func:`launch` is the one
Python launcher for all of them.

Limits: a program holds a (BLOCK_H x BLOCK_H) block per gate, so this layout is meant for
small H (``triton_rnn.MAX_HIDDEN`` = 64: at 128 the LSTM kernels need more shared memory
than an sm_90 block has, found by compiling them for sm_90). Wider LSTMs run the unit-tiled
kernels of :mod:`rnnlab.layers.triton_tiled`, which split the weights over programs and meet
at a grid-wide barrier per step. ``tl.dot`` is called with ``input_precision="ieee"`` so
fp32 stays fp32 (no TF32).
"""

from __future__ import annotations

import triton
import triton.language as tl

ACT_CODES = {"tanh": 0, "sigmoid": 1, "hard_sigmoid": 2, "softsign": 3, "relu": 4, "linear": 5}


def launch(kernel, grid: tuple[int, ...], mask, lengths, *args, **meta) -> None:
    """Launch ``kernel[grid](mask, lengths, *args, HAS_MASK=..., HAS_LEN=..., **meta)``.

    ``mask`` (B, H) and ``lengths`` (B,) may be None: the kernel then gets ``args[0]`` as a
    dummy pointer it never reads. Both are made contiguous."""
    like = args[0]
    kernel[grid](
        like if mask is None else mask.contiguous(),
        like if lengths is None else lengths.contiguous(),
        *args, HAS_MASK=mask is not None, HAS_LEN=lengths is not None, **meta,
    )  # fmt: skip


# ----------------------------------------------------------------------- shared helpers
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
def _tile(B, H, BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr):
    """Tile prologue of the whole-width kernels: this program's batch rows ``rb``, the hidden
    columns ``rh``, their masks, the (rows x H) mask and the offsets ``bh`` into (B, H)."""
    rb = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)
    rh = tl.arange(0, BLOCK_H)
    bmask = rb < B
    hmask = rh < H
    return rb, rh, bmask, hmask, bmask[:, None] & hmask[None, :], rb[:, None] * H + rh[None, :]


@triton.jit
def _optional(ptr, offsets, mask, PRESENT: tl.constexpr):
    """The mask / lengths tile when present, else zeros (never read by the caller)."""
    if PRESENT:
        v = tl.load(ptr + offsets, mask=mask, other=0)
    else:
        v = offsets * 0
    return v


@triton.jit
def _gate_weight(w_ptr, gate, H, offsets, mask):
    """Gate ``gate``'s (H, H) block of ``W_hh`` (G*H, H) at ``offsets`` (a tile of it)."""
    return tl.load(w_ptr + gate * H * H + offsets, mask=mask, other=0.0)


@triton.jit
def _lstm_weights(w_ptr, H, offsets, mask):
    """The four gate blocks (i, f, g, o) of an LSTM's ``W_hh`` (4H, H) at ``offsets``."""
    w_i = _gate_weight(w_ptr, 0, H, offsets, mask)
    w_f = _gate_weight(w_ptr, 1, H, offsets, mask)
    w_g = _gate_weight(w_ptr, 2, H, offsets, mask)
    return w_i, w_f, w_g, _gate_weight(w_ptr, 3, H, offsets, mask)


@triton.jit
def _lstm_prologue(w_ptr, H, w_off, w_mask, m_ptr, m_off, m_mask, len_ptr, rb, bmask,
                   HAS_MASK: tl.constexpr, HAS_LEN: tl.constexpr):  # fmt: skip
    """What every LSTM kernel holds for all its steps: the four ``W_hh`` gate blocks at
    ``w_off``, the recurrent-dropout mask tile and the lengths tile (zeros when absent)."""
    w_i, w_f, w_g, w_o = _lstm_weights(w_ptr, H, w_off, w_mask)
    m = _optional(m_ptr, m_off, m_mask, HAS_MASK)
    return w_i, w_f, w_g, w_o, m, _optional(len_ptr, rb, bmask, HAS_LEN)


@triton.jit
def _drop(h, m, HAS_MASK: tl.constexpr):
    """``m ⊙ h``: the recurrent-dropout mask on the state entering ``W_hh``."""
    if HAS_MASK:
        h = h * m
    return h


@triton.jit
def _zero_past(x, t, L, HAS_LEN: tl.constexpr):
    """``x`` at rows whose length exceeds ``t``, zero past a row's length."""
    if HAS_LEN:
        x = tl.where((t < L)[:, None], x, 0.0)
    return x


@triton.jit
def _keep_past(new, old, t, L, HAS_LEN: tl.constexpr):
    """``new`` at rows still inside their length at step ``t``; ``old`` (frozen) past it."""
    if HAS_LEN:
        new = tl.where((t < L)[:, None], new, old)
    return new


@triton.jit
def _load4(ptr, off, mask, H):
    """The four H-wide gate slices (i, f, g, o) at ``off`` of a (.., 4H) tensor."""
    a = tl.load(ptr + off, mask=mask, other=0.0)
    b = tl.load(ptr + off + H, mask=mask, other=0.0)
    c = tl.load(ptr + off + 2 * H, mask=mask, other=0.0)
    d = tl.load(ptr + off + 3 * H, mask=mask, other=0.0)
    return a, b, c, d


@triton.jit
def _store4(ptr, off, mask, H, a, b, c, d):
    tl.store(ptr + off, a, mask=mask)
    tl.store(ptr + off + H, b, mask=mask)
    tl.store(ptr + off + 2 * H, c, mask=mask)
    tl.store(ptr + off + 3 * H, d, mask=mask)


@triton.jit
def _lstm_step(
    xp_ptr, g_off, mask, H, h_in, w_i, w_f, w_g, w_o, c, ACT: tl.constexpr, REC_ACT: tl.constexpr
):
    """The LSTM forward equations for one step of a (rows x units) tile:

    z = xp_t + (m ⊙ h_{t-1}) W_hh^T;  i, f, o = rec_act(z_i, z_f, z_o);  g = act(z_g);
    c_t = f ⊙ c_{t-1} + i ⊙ g;  h_t = o ⊙ act(c_t).   Returns (i, f, g, o, c_t, h_t).
    """
    xi, xf, xg, xo = _load4(xp_ptr, g_off, mask, H)
    i = _act(xi + _dot(h_in, w_i), REC_ACT)
    f = _act(xf + _dot(h_in, w_f), REC_ACT)
    g = _act(xg + _dot(h_in, w_g), ACT)
    o = _act(xo + _dot(h_in, w_o), REC_ACT)
    c_new = f * c + i * g
    return i, f, g, o, c_new, o * _act(c_new, ACT)


@triton.jit
def _lstm_step_bwd(
    gates_ptr, cs_ptr, c0_ptr, dout_ptr, dxp_ptr, g_off, s_off, c0_off, mask, t, t_b, L,
    dh, dc, H, HAS_LEN: tl.constexpr, ACT: tl.constexpr, REC_ACT: tl.constexpr,
):  # fmt: skip
    """The LSTM backward equations for step t of a (rows x units) tile, from the saved
    gates and cells; writes dz_t (the pre-activation gradients) to ``dxp``:

    dh_t = dh + dout_t;  dc_t = dc + dh_t ⊙ o ⊙ act'(c_t);
    dz_i = dc_t ⊙ g ⊙ rec_act'(i);  dz_f = dc_t ⊙ c_{t-1} ⊙ rec_act'(f);
    dz_g = dc_t ⊙ i ⊙ act'(g);      dz_o = dh_t ⊙ act(c_t) ⊙ rec_act'(o);
    dc_{t-1} = dc_t ⊙ f.

    dz is zero past a row's length and dc is carried unchanged there. Returns
    (dz_i, dz_f, dz_g, dz_o, dc_{t-1}); dh_{t-1} = dz W_hh needs every unit's dz, so the
    caller forms it.
    """
    i, f, g, o = _load4(gates_ptr, g_off, mask, H)
    c_t = tl.load(cs_ptr + s_off, mask=mask, other=0.0)
    c_prev = tl.load(cs_ptr + s_off - H, mask=mask & (t_b > 0)[:, None], other=0.0)
    c_prev += tl.load(c0_ptr + c0_off, mask=mask & (t_b == 0)[:, None], other=0.0)
    dh_t = dh + _zero_past(tl.load(dout_ptr + s_off, mask=mask, other=0.0), t, L, HAS_LEN)
    a_c = _act(c_t, ACT)
    dc_t = dc + dh_t * o * _dact(a_c, ACT)
    dzi = _zero_past(dc_t * g * _dact(i, REC_ACT), t, L, HAS_LEN)
    dzf = _zero_past(dc_t * c_prev * _dact(f, REC_ACT), t, L, HAS_LEN)
    dzg = _zero_past(dc_t * i * _dact(g, ACT), t, L, HAS_LEN)
    dzo = _zero_past(dh_t * a_c * _dact(o, REC_ACT), t, L, HAS_LEN)
    _store4(dxp_ptr, g_off, mask, H, dzi, dzf, dzg, dzo)
    return dzi, dzf, dzg, dzo, _keep_past(dc_t * f, dc, t, L, HAS_LEN)


# ----------------------------------------------------------------------- LSTM
@triton.jit
def lstm_fwd_kernel(
    m_ptr, len_ptr, xp_ptr, w_ptr, h0_ptr, c0_ptr,  # inputs
    out_ptr, hT_ptr, cT_ptr, gates_ptr, cs_ptr,  # outputs (gates, cs saved for backward)
    B, T, H,
    HAS_MASK: tl.constexpr, HAS_LEN: tl.constexpr, SAVE: tl.constexpr,
    ACT: tl.constexpr, REC_ACT: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr,
):  # fmt: skip
    """LSTM over all T steps (:func:`_lstm_step`); with SAVE, the gates (B, T, 4H) and the
    cells c_t (B, T, H) for the backward."""
    rb, rh, bmask, hmask, bh_mask, bh = _tile(B, H, BLOCK_B, BLOCK_H)
    # W_g^T blocks, held for all T steps: wt[k, j] = W_hh[g*H + j, k]
    wt_off = rh[None, :] * H + rh[:, None]
    w_mask = hmask[:, None] & hmask[None, :]
    w_i, w_f, w_g, w_o, m, L = _lstm_prologue(w_ptr, H, wt_off, w_mask, m_ptr, bh, bh_mask,
                                              len_ptr, rb, bmask, HAS_MASK, HAS_LEN)  # fmt: skip
    h = tl.load(h0_ptr + bh, mask=bh_mask, other=0.0)
    c = tl.load(c0_ptr + bh, mask=bh_mask, other=0.0)
    G = 4 * H
    for t in range(T):
        g_off = rb[:, None] * (T * G) + t * G + rh[None, :]
        s_off = rb[:, None] * (T * H) + t * H + rh[None, :]
        h_in = _drop(h, m, HAS_MASK)
        i, f, g, o, c_new, h_new = _lstm_step(
            xp_ptr, g_off, bh_mask, H, h_in, w_i, w_f, w_g, w_o, c, ACT, REC_ACT
        )
        if SAVE:
            _store4(gates_ptr, g_off, bh_mask, H, i, f, g, o)
            tl.store(cs_ptr + s_off, c_new, mask=bh_mask)
        c = _keep_past(c_new, c, t, L, HAS_LEN)
        h = _keep_past(h_new, h, t, L, HAS_LEN)
        tl.store(out_ptr + s_off, _zero_past(h_new, t, L, HAS_LEN), mask=bh_mask)
    tl.store(hT_ptr + bh, h, mask=bh_mask)
    tl.store(cT_ptr + bh, c, mask=bh_mask)


@triton.jit
def lstm_bwd_kernel(
    m_ptr, len_ptr, w_ptr, gates_ptr, cs_ptr, c0_ptr, dout_ptr, dhT_ptr, dcT_ptr,  # inputs
    dxp_ptr, dh0_ptr, dc0_ptr,  # outputs
    B, T, H,
    HAS_MASK: tl.constexpr, HAS_LEN: tl.constexpr,
    ACT: tl.constexpr, REC_ACT: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr,
):  # fmt: skip
    """LSTM backward in reverse time (:func:`_lstm_step_bwd`), then dh_{t-1} = (dz W_hh) ⊙ m."""
    rb, rh, bmask, hmask, bh_mask, bh = _tile(B, H, BLOCK_B, BLOCK_H)
    # W_g blocks, held for all T steps: w[j, k] = W_hh[g*H + j, k]
    w_off = rh[:, None] * H + rh[None, :]
    w_mask = hmask[:, None] & hmask[None, :]
    w_i, w_f, w_g, w_o, m, L = _lstm_prologue(w_ptr, H, w_off, w_mask, m_ptr, bh, bh_mask,
                                              len_ptr, rb, bmask, HAS_MASK, HAS_LEN)  # fmt: skip
    dh = tl.load(dhT_ptr + bh, mask=bh_mask, other=0.0)
    dc = tl.load(dcT_ptr + bh, mask=bh_mask, other=0.0)
    G = 4 * H
    for tt in range(T):
        t = T - 1 - tt
        g_off = rb[:, None] * (T * G) + t * G + rh[None, :]
        s_off = rb[:, None] * (T * H) + t * H + rh[None, :]
        t_b = rb * 0 + t  # t as a (BLOCK_B,) tensor, so the masks below are tensors
        dzi, dzf, dzg, dzo, dc = _lstm_step_bwd(
            gates_ptr, cs_ptr, c0_ptr, dout_ptr, dxp_ptr, g_off, s_off, bh, bh_mask, t, t_b,
            L, dh, dc, H, HAS_LEN, ACT, REC_ACT,
        )  # fmt: skip
        dh_prev = _dot(dzi, w_i) + _dot(dzf, w_f) + _dot(dzg, w_g) + _dot(dzo, w_o)
        dh = _keep_past(_drop(dh_prev, m, HAS_MASK), dh, t, L, HAS_LEN)
    tl.store(dh0_ptr + bh, dh, mask=bh_mask)
    tl.store(dc0_ptr + bh, dc, mask=bh_mask)


# ----------------------------------------------------------------------- SimpleRNN
@triton.jit
def rnn_fwd_kernel(
    m_ptr, len_ptr, xp_ptr, w_ptr, h0_ptr, out_ptr, hT_ptr,
    B, T, H,
    HAS_MASK: tl.constexpr, HAS_LEN: tl.constexpr, ACT: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr,
):  # fmt: skip
    """SimpleRNN: h_t = act(xp_t + (m ⊙ h_{t-1}) W_hh^T). Nothing else is saved: at valid
    steps ``out`` is h_t, which is all the backward needs (dz is zero past a length)."""
    rb, rh, bmask, hmask, bh_mask, bh = _tile(B, H, BLOCK_B, BLOCK_H)
    w = _gate_weight(w_ptr, 0, H, rh[None, :] * H + rh[:, None], hmask[:, None] & hmask[None, :])
    h = tl.load(h0_ptr + bh, mask=bh_mask, other=0.0)
    m = _optional(m_ptr, bh, bh_mask, HAS_MASK)
    L = _optional(len_ptr, rb, bmask, HAS_LEN)
    for t in range(T):
        s_off = rb[:, None] * (T * H) + t * H + rh[None, :]
        xp = tl.load(xp_ptr + s_off, mask=bh_mask, other=0.0)
        h_new = _act(xp + _dot(_drop(h, m, HAS_MASK), w), ACT)
        h = _keep_past(h_new, h, t, L, HAS_LEN)
        tl.store(out_ptr + s_off, _zero_past(h_new, t, L, HAS_LEN), mask=bh_mask)
    tl.store(hT_ptr + bh, h, mask=bh_mask)


@triton.jit
def rnn_bwd_kernel(
    m_ptr, len_ptr, w_ptr, hs_ptr, dout_ptr, dhT_ptr, dxp_ptr, dh0_ptr,
    B, T, H,
    HAS_MASK: tl.constexpr, HAS_LEN: tl.constexpr, ACT: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr,
):  # fmt: skip
    """dz_t = (dh + dout_t) ⊙ act'(h_t) (zero past a length); dh_{t-1} = (dz_t W_hh) ⊙ m."""
    rb, rh, bmask, hmask, bh_mask, bh = _tile(B, H, BLOCK_B, BLOCK_H)
    w = _gate_weight(w_ptr, 0, H, rh[:, None] * H + rh[None, :], hmask[:, None] & hmask[None, :])
    dh = tl.load(dhT_ptr + bh, mask=bh_mask, other=0.0)
    m = _optional(m_ptr, bh, bh_mask, HAS_MASK)
    L = _optional(len_ptr, rb, bmask, HAS_LEN)
    for tt in range(T):
        t = T - 1 - tt
        s_off = rb[:, None] * (T * H) + t * H + rh[None, :]
        dout = tl.load(dout_ptr + s_off, mask=bh_mask, other=0.0)
        y = tl.load(hs_ptr + s_off, mask=bh_mask, other=0.0)
        dz = _zero_past((dh + dout) * _dact(y, ACT), t, L, HAS_LEN)
        tl.store(dxp_ptr + s_off, dz, mask=bh_mask)
        dh = _keep_past(_drop(_dot(dz, w), m, HAS_MASK), dh, t, L, HAS_LEN)
    tl.store(dh0_ptr + bh, dh, mask=bh_mask)


# ----------------------------------------------------------------------- GRU
@triton.jit
def gru_fwd_kernel(
    m_ptr, len_ptr, xp_ptr, w_ptr, bhh_ptr, h0_ptr, out_ptr, hT_ptr, gates_ptr,
    B, T, H,
    HAS_MASK: tl.constexpr, HAS_LEN: tl.constexpr, RESET_AFTER: tl.constexpr,
    HAS_BHH: tl.constexpr, SAVE: tl.constexpr, ACT: tl.constexpr, REC_ACT: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr,
):  # fmt: skip
    """GRU, gates r, z, n, with h̃ = m ⊙ h_{t-1}:

    r, z = rec_act(x_r + h̃ W_hr^T (+ b_hr), x_z + h̃ W_hz^T (+ b_hz));
    n = act(x_n + r ⊙ (h̃ W_hn^T + b_hn))   (reset_after, torch/cuDNN)
    n = act(x_n + (r ⊙ h̃) W_hn^T)          (reset_before, the textbook form);
    h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}.

    With SAVE, (r, z, n, h̃ W_hn^T + b_hn) per step in ``gates`` (B, T, 4H)."""
    rb, rh, bmask, hmask, bh_mask, bh = _tile(B, H, BLOCK_B, BLOCK_H)
    wt_off = rh[None, :] * H + rh[:, None]
    w_mask = hmask[:, None] & hmask[None, :]
    w_r = _gate_weight(w_ptr, 0, H, wt_off, w_mask)
    w_z = _gate_weight(w_ptr, 1, H, wt_off, w_mask)
    w_n = _gate_weight(w_ptr, 2, H, wt_off, w_mask)
    if HAS_BHH:
        b_r = tl.load(bhh_ptr + rh, mask=hmask, other=0.0)[None, :]
        b_z = tl.load(bhh_ptr + H + rh, mask=hmask, other=0.0)[None, :]
        b_n = tl.load(bhh_ptr + 2 * H + rh, mask=hmask, other=0.0)[None, :]
    h = tl.load(h0_ptr + bh, mask=bh_mask, other=0.0)
    m = _optional(m_ptr, bh, bh_mask, HAS_MASK)
    L = _optional(len_ptr, rb, bmask, HAS_LEN)
    for t in range(T):
        h_in = _drop(h, m, HAS_MASK)
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
            _store4(gates_ptr, g_off, bh_mask, H, r, z, n, hn)
        h = _keep_past(h_new, h, t, L, HAS_LEN)
        s_off = rb[:, None] * (T * H) + t * H + rh[None, :]
        tl.store(out_ptr + s_off, _zero_past(h_new, t, L, HAS_LEN), mask=bh_mask)
    tl.store(hT_ptr + bh, h, mask=bh_mask)


@triton.jit
def gru_bwd_kernel(
    m_ptr, len_ptr, w_ptr, gates_ptr, out_ptr, h0_ptr, dout_ptr, dhT_ptr,
    dxp_ptr, drec_ptr, dh0_ptr,
    B, T, H,
    HAS_MASK: tl.constexpr, HAS_LEN: tl.constexpr, RESET_AFTER: tl.constexpr,
    ACT: tl.constexpr, REC_ACT: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr,
):  # fmt: skip
    """Writes dxp (B,T,3H) and, for reset_after, ``drec`` (B,T,H): the gradient of
    ``W_hn h̃ + b_hn`` (r ⊙ dn), from which torch forms dW_hn and db_hn."""
    rb, rh, bmask, hmask, bh_mask, bh = _tile(B, H, BLOCK_B, BLOCK_H)
    w_off = rh[:, None] * H + rh[None, :]
    w_mask = hmask[:, None] & hmask[None, :]
    w_r = _gate_weight(w_ptr, 0, H, w_off, w_mask)
    w_z = _gate_weight(w_ptr, 1, H, w_off, w_mask)
    w_n = _gate_weight(w_ptr, 2, H, w_off, w_mask)
    dh = tl.load(dhT_ptr + bh, mask=bh_mask, other=0.0)
    m = _optional(m_ptr, bh, bh_mask, HAS_MASK)
    L = _optional(len_ptr, rb, bmask, HAS_LEN)
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
        dh_t = dh + _zero_past(tl.load(dout_ptr + s_off, mask=bh_mask, other=0.0), t, L, HAS_LEN)
        dan = dh_t * (1.0 - z) * _dact(n, ACT)
        daz = dh_t * (h_prev - n) * _dact(z, REC_ACT)
        if RESET_AFTER:
            hn = tl.load(gates_ptr + g_off + 3 * H, mask=bh_mask, other=0.0)
            dar = dan * hn * _dact(r, REC_ACT)
            dhn = _zero_past(dan * r, t, L, HAS_LEN)
            dh_in = _dot(dhn, w_n)
        else:
            h_in = _drop(h_prev, m, HAS_MASK)
            dq = _dot(dan, w_n)  # q = r ⊙ h̃ enters W_hn
            dar = dq * h_in * _dact(r, REC_ACT)
            dh_in = dq * r
        dar = _zero_past(dar, t, L, HAS_LEN)
        daz = _zero_past(daz, t, L, HAS_LEN)
        dan = _zero_past(dan, t, L, HAS_LEN)
        tl.store(dxp_ptr + x_off, dar, mask=bh_mask)
        tl.store(dxp_ptr + x_off + H, daz, mask=bh_mask)
        tl.store(dxp_ptr + x_off + 2 * H, dan, mask=bh_mask)
        if RESET_AFTER:
            tl.store(drec_ptr + s_off, dhn, mask=bh_mask)
        dh_in += _dot(dar, w_r) + _dot(daz, w_z)
        dh_prev = dh_t * z + _drop(dh_in, m, HAS_MASK)
        dh = _keep_past(dh_prev, dh, t, L, HAS_LEN)
    tl.store(dh0_ptr + bh, dh, mask=bh_mask)
