"""Hand-derived backpropagation through time, one ``torch.autograd.Function`` per cell.

Every function runs the whole sequence, time-major. Shapes: B batch, T time, K input
columns, H hidden, G gates. All take the same arguments, in this order::

    x (T, B, K) the inputs, contiguous, weight_ih (G*H, K), weight_hh (G*H, H),
    b_hn (H,) | None (GRU reset_after only: the bias inside r ⊙ (W_hn h + b_hn)),
    h0 (B, H), c0 (B, H) | None (LSTM only), step_mask (T, B, 1) bool | None,
    out_mask (T, B, 1) | None, rec_mask (B, H) shared | (G, B, H) one per gate | None,
    activation, recurrent_activation

and return ``(outputs (B, T, H), h_T[, c_T])``. The input-side bias is a column of
``weight_ih`` against a column of ones in ``x`` (the caller appends both, under autograd),
so the projection includes it and its gradient is a column of ``dW_ih``. With
``weight_ih`` None, ``x`` is instead the projected input (T, B, G*H), bias included (one
input-dropout mask per gate, which the caller projects). ``step_mask`` False holds the
state at a step (its gates get zero gradient); ``out_mask`` multiplies the outputs (0 where
an output is zeroed); ``rec_mask`` is the recurrent-dropout mask on the state entering the
recurrent matmul (gate g's block of ``W_hh`` reads ``m_g ⊙ h``).

Forward: the input half ``X W_ih^T`` of all steps is one matmul into the gates' buffer
(T, B, G*H); each step adds its recurrent matmul in place and applies the activations
there. It keeps the gate activations, the states (T+1, B, H) (the LSTM also its cell
states (T+1, B, H) and ``act(c_t)`` (T, B, H); GRU ``reset_after`` also ``W_hn h̃ + b_hn``
(T, B, H)). Backward runs the recurrence in reverse with one (B, G*H) x (G*H, H) matmul per
step for the state gradient (the textbook GRU needs two: its reset gate acts between its
two recurrent matmuls; per-gate masks need one per gate), and forms ``dW_hh = dG^T H_prev``,
``dW_ih = dG^T X`` and ``dX = dG W_ih`` as single matmuls over all B*T rows at the end (the
LSTM over the B*chunk rows of each chunk of steps, from a dG buffer that stays in cache).

Double backward is not supported (``once_differentiable``: a second derivative raises).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from .bptt_ops import (
    act_,
    act_grad,
    act_grad_into,
    act_into,
    project,
    project_grads,
    time_major_grad,
)
from .bptt_ops import write_outputs as _write_outputs


def _start(grad: Tensor | None, like: Tensor) -> Tensor:
    return torch.zeros_like(like) if grad is None else grad.clone()


def _transposed(w: Tensor) -> Tensor:
    """``w^T`` as its own contiguous copy: MKL's per-step ``h W^T`` runs about 15% faster
    on it than on the transposed view (measured at (128, 128) x (128, 512))."""
    return w.t().contiguous()


def _step_views(t: Tensor | None, T: int) -> list:
    """``t`` (T, ...) as a list of T views (one C++ call instead of T indexing calls)."""
    return [None] * T if t is None else list(t.unbind(0))


class _RecMask:
    """The recurrent-dropout mask ``m``: None, shared (B, H), or one per gate (G, B, H).

    Gate ``g`` is the ``g``-th block of H rows of ``W_hh``; its recurrent input is ``m_g ⊙ h``.
    A shared mask's inputs ``m ⊙ h_{t-1}`` are kept for all T steps (``kept`` (T, B, H)):
    the forward writes them (``T`` given), the backward's weight gradient reads them
    (``kept`` given) instead of forming ``m ⊙ H_prev`` again.
    """

    def __init__(self, mask: Tensor | None, T: int = 0, kept: Tensor | None = None):
        self.m = mask
        self.per_gate = mask is not None and mask.dim() == 3
        self.buf = None if mask is None else torch.empty_like(mask)
        if T and mask is not None and not self.per_gate:
            kept = mask.new_empty(T, *mask.shape)
        self.kept = kept

    def of(self, g: int) -> Tensor | None:
        return self.m[g] if self.per_gate else self.m

    def masked(self, h: Tensor, t: int) -> Tensor:
        """Step t's recurrent input(s): ``h``, ``m ⊙ h`` (B, H) or (G, B, H)."""
        if self.m is None:
            return h
        return torch.mul(h, self.m, out=self.buf if self.kept is None else self.kept[t])

    def gate(self, hin: Tensor, g: int) -> Tensor:
        return hin[g] if self.per_gate else hin

    def addmm_(self, out: Tensor, hin: Tensor, w_t: Tensor, g0: int = 0) -> Tensor:
        """``out`` (B, k*H) += the recurrent matmul of gates g0 .. g0+k-1 (``w_t`` (H, k*H))."""
        if not self.per_gate:
            return out.addmm_(hin, w_t)
        H = hin.size(-1)
        for j in range(out.size(1) // H):
            out[:, j * H : (j + 1) * H].addmm_(hin[g0 + j], w_t[:, j * H : (j + 1) * H])
        return out

    def back(self, dg: Tensor, w: Tensor, out: Tensor, tmp: Tensor, g0: int = 0) -> Tensor:
        """``out = Σ_g (dG_g W_g) ⊙ m_g`` over gates g0 .. (``dg`` (B, k*H), ``w`` (k*H, H))."""
        if not self.per_gate:
            torch.mm(dg, w, out=out)
            return out if self.m is None else out.mul_(self.m)
        H = out.size(1)
        torch.mm(dg[:, :H], w[:H], out=out).mul_(self.m[g0])
        for j in range(1, dg.size(1) // H):
            block = slice(j * H, (j + 1) * H)
            out.addcmul_(torch.mm(dg[:, block], w[block], out=tmp), self.m[g0 + j])
        return out

    def inputs(self, hs: Tensor, g: int, rows: slice = slice(None)) -> Tensor:
        """(T, B, H) states -> what entered gate g's recurrent matmul at the steps ``rows``."""
        if self.kept is not None:
            return self.kept[rows]
        m = self.of(g)
        return hs[rows] if m is None else hs[rows] * m

    def weight_grad(self, dg: Tensor, hs: Tensor, out: Tensor, g0: int = 0) -> Tensor:
        """``out`` (k*H, H) = dG^T (m ⊙ H_prev) over all B*T rows (``dg`` (T*B, k*H)),
        formed as ``((m ⊙ H_prev)^T dG)^T``: MKL runs that orientation 1.4x faster here."""
        H = hs.size(-1)
        if not self.per_gate:
            return out.copy_(torch.mm(self.inputs(hs, 0).reshape(-1, H).t(), dg).t())
        for j in range(dg.size(1) // H):
            block = slice(j * H, (j + 1) * H)
            hin = self.inputs(hs, g0 + j).reshape(-1, H)
            out[block].copy_(torch.mm(hin.t(), dg[:, block]).t())
        return out


CHUNK_ELEMENTS = 1 << 18  # dG elements per chunk of steps (1 MB in float32: in L2 here)


def _chunk_steps(T: int, step_elements: int) -> int:
    """How many steps of ``step_elements`` gate values make one chunk (1 .. T)."""
    return max(1, min(T, CHUNK_ELEMENTS // max(1, step_elements)))


class _ChunkGrads:
    """``dW_hh = dG^T (m ⊙ H_prev)``, ``dW_ih = dG^T X`` and ``dX = dG W_ih`` accumulated
    chunk by chunk of steps from a (chunk, B, G*H) buffer of dG that the backward loop
    refills, so that dG stays in cache: writing dG for all T steps to memory and reading it
    back cost ~1 ms more at (128, 28, 28, 128) than these matmuls lose by their smaller
    size. With ``w_ih`` None (``x`` is the projected input) the chunk is all T steps and
    ``dX`` is dG itself.
    """

    def __init__(self, needs, x: Tensor, w_ih: Tensor | None, hs: Tensor, rec: _RecMask,
                 width: int):  # fmt: skip
        T, B, H = hs.size(0) - 1, hs.size(1), hs.size(2)
        self.chunk = T if w_ih is None else _chunk_steps(T, B * width)
        self.dg = hs.new_empty(self.chunk, B, width)
        self.x, self.w_ih, self.hs, self.rec = x, w_ih, hs, rec
        self.whh = hs.new_zeros(H, width) if needs[2] else None  # dW_hh^T, (H, G*H)
        self.wih = dx = None
        if w_ih is not None:
            self.wih = x.new_zeros(x.size(-1), width) if needs[1] else None
            dx = x.new_empty(x.shape) if needs[0] else None
        elif needs[0]:
            dx = self.dg
        self.dx = dx

    def step_views(self) -> list:
        """Step t's dG buffer (B, G*H) is ``views[t % chunk]``."""
        return list(self.dg.unbind(0))

    def flush(self, t0: int) -> None:
        """Take in the dG of steps t0 .. t0 + chunk - 1 (fewer at the end of the sequence)."""
        n = min(self.chunk, self.hs.size(0) - 1 - t0)
        rows, width = slice(t0, t0 + n), self.dg.size(-1)
        dg = self.dg[:n].view(-1, width)
        if self.whh is not None:
            rec, H = self.rec, self.hs.size(-1)
            if not rec.per_gate:
                self.whh.addmm_(rec.inputs(self.hs, 0, rows).reshape(-1, H).t(), dg)
            else:
                for j in range(width // H):
                    block = slice(j * H, (j + 1) * H)
                    hin = rec.inputs(self.hs, j, rows).reshape(-1, H)
                    self.whh[:, block].addmm_(hin.t(), dg[:, block])
        if self.w_ih is None:
            return
        x = self.x[rows].reshape(dg.size(0), self.x.size(-1))
        if self.wih is not None:
            self.wih.addmm_(x.t(), dg)
        if self.dx is not None:
            torch.mm(dg, self.w_ih, out=self.dx[rows].view(dg.size(0), self.x.size(-1)))

    def grads(self) -> tuple:
        """``(dx, dW_ih, dW_hh)``."""

        def t(m):
            return None if m is None else m.t().contiguous()

        return self.dx, t(self.wih), t(self.whh)


class _StateGrad:
    """The state-gradient recurrence shared by every backward pass:

        dh_{t-1} = Σ_g (dG_{t,g} W_g) ⊙ m_g  +  dh_t ⊙ carry_t  +  dy_{t-1}

    ``carry_t`` is what passes straight back to h_{t-1} (the GRU's z; 1 on held steps and 0
    elsewhere for the other cells). Two (B, H) buffers swap roles each step; when nothing is
    masked the whole update is one ``addmm``.
    """

    def __init__(self, grad_h, like: Tensor, dy: list, rec: _RecMask, carry: list):
        self.dh = _start(grad_h, like)
        if dy[-1] is not None:
            self.dh.add_(dy[-1])
        self.nxt, self.tmp = torch.empty_like(self.dh), torch.empty_like(self.dh)
        self.dy, self.rec, self.carry = dy, rec, carry

    def back(self, t: int, dg_t: Tensor, w_hh: Tensor, extra=None) -> None:
        """Replace ``self.dh`` (the gradient of h_t) by that of h_{t-1}. ``extra = (u, v, g)``
        adds ``u ⊙ v`` to the gradient of gate g's recurrent input ``m_g ⊙ h``."""
        dy = self.dy[t - 1] if t > 0 else None
        dh, nxt, carry, rec = self.dh, self.nxt, self.carry[t], self.rec
        if rec.m is None:  # one or two ops: dy + dh ⊙ carry + dG W_hh
            if carry is None:
                if dy is None:
                    torch.mm(dg_t, w_hh, out=nxt)
                else:
                    torch.addmm(dy, dg_t, w_hh, out=nxt)
            else:
                if dy is None:
                    torch.mul(dh, carry, out=nxt)
                else:
                    torch.addcmul(dy, dh, carry, out=nxt)
                nxt.addmm_(dg_t, w_hh)
            if extra is not None:
                nxt.addcmul_(extra[0], extra[1])
        elif not rec.per_gate and extra is None:  # dy + (dG W_hh) ⊙ m [+ dh ⊙ carry]
            torch.mm(dg_t, w_hh, out=self.tmp)
            if dy is None:
                torch.mul(self.tmp, rec.m, out=nxt)
            else:
                torch.addcmul(dy, self.tmp, rec.m, out=nxt)
            if carry is not None:
                nxt.addcmul_(dh, carry)
        else:
            rec.back(dg_t, w_hh, nxt, self.tmp)
            if extra is not None:
                u, v, g = extra
                nxt.addcmul_(torch.mul(u, v, out=self.tmp), rec.of(g))
            if carry is not None:
                nxt.addcmul_(dh, carry)
            if dy is not None:
                nxt.add_(dy)
        self.dh, self.nxt = nxt, self.dh


class SimpleRNNFunction(torch.autograd.Function):
    r"""Elman recurrence ``h_t = act(xp_t + W_hh (m ⊙ h_{t-1}))`` over all T steps.

    Backward: ``da_t = dh_t ⊙ act'(h_t)``, ``dh_{t-1} = (da_t W_hh) ⊙ m``.
    """

    @staticmethod
    def forward(ctx, x, w_ih, w_hh, b_hh, h0, c0, step_mask, out_mask, rec_mask, act, _):
        ctx.set_materialize_grads(False)
        T = x.size(0)
        hs = x.new_empty(T + 1, *h0.shape)
        hs[0] = h0
        project(x, w_ih, h0.size(1), out=hs[1:])  # step t's input half, in place of h_t
        w_t, rec = _transposed(w_hh), _RecMask(rec_mask, T)
        h_t, masks = hs.unbind(0), _step_views(step_mask, T)
        for t in range(T):
            new = act_(act, h_t[t + 1].addmm_(rec.masked(h_t[t], t), w_t))
            if masks[t] is not None:
                torch.where(masks[t], new, h_t[t], out=new)
        ctx.save_for_backward(w_ih, x if w_ih is not None else None, w_hh, hs, step_mask,
                              out_mask, rec_mask, rec.kept)  # fmt: skip
        ctx.act = act
        return _write_outputs(hs[1:], out_mask), hs[T].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out, grad_h):
        w_ih, x, w_hh, hs, step_mask, out_mask, rec_mask, kept = ctx.saved_tensors
        T, rec = hs.size(0) - 1, _RecMask(rec_mask, kept=kept)
        dy = _step_views(time_major_grad(grad_out, out_mask), T)
        d = act_grad(ctx.act, hs[1:])  # (T, B, H)
        carry = [None] * T
        if step_mask is not None:  # held steps: no gradient into the cell, dh passes through
            d.mul_(step_mask)
            carry = _step_views((~step_mask).to(d.dtype), T)
        da = torch.empty_like(d)
        grad = _StateGrad(grad_h, hs[0], dy, rec, carry)
        d_t, da_t = d.unbind(0), da.unbind(0)
        for t in range(T - 1, -1, -1):
            torch.mul(grad.dh, d_t[t], out=da_t[t])
            grad.back(t, da_t[t], w_hh)
        dw_hh = None
        if ctx.needs_input_grad[2]:
            dw_hh = rec.weight_grad(da.view(-1, da.size(-1)), hs[:T], torch.empty_like(w_hh))
        dh0 = grad.dh if ctx.needs_input_grad[4] else None
        dx, dw_ih = project_grads(ctx.needs_input_grad[:2], x, w_ih, da)
        return dx, dw_ih, dw_hh, None, dh0, None, None, None, None, None, None


class LSTMFunction(torch.autograd.Function):
    r"""LSTM (gates i, f, g, o) over all T steps; see :class:`rnnlab.layers.cells.LSTMCell`.

    Backward, with ``dh_t`` the state gradient plus the output gradient, ``τ_t = act(c_t)``::

        dc_t  += dh_t ⊙ o_t ⊙ act'(τ_t)          (dc_t arrives from step t+1 as dc ⊙ f)
        di, df, dg, do = dc_t ⊙ g ⊙ σ'(i), dc_t ⊙ c_{t-1} ⊙ σ'(f), dc_t ⊙ i ⊙ act'(g),
                         dh_t ⊙ τ_t ⊙ σ'(o)
        dh_{t-1} = Σ_gates ([di df dg do] W_hh) ⊙ m,   dc_{t-1} = dc_t ⊙ f

    The factors ``σ'(.)``, ``act'(.)`` and their products are formed step by step in (B, 4H)
    buffers, while the step's gates are in cache: passes over whole (T, B, H) tensors before
    the loop cost more than the loop (measured: 5 of 20 ms at (128, 28, 28, 128)).
    """

    @staticmethod
    def forward(ctx, x, w_ih, w_hh, b_hh, h0, c0, step_mask, out_mask, rec_mask, act, rec_act):
        ctx.set_materialize_grads(False)
        T, (B, H) = x.size(0), h0.shape
        a = project(x, w_ih, 4 * H)  # the gates' input half, then (in place) the gates
        hs, cs = x.new_empty(T + 1, B, H), x.new_empty(T + 1, B, H)
        taus = x.new_empty(T, B, H)  # act(c_t), kept for the backward
        hs[0], cs[0] = h0, c0
        w_t, rec = _transposed(w_hh), _RecMask(rec_mask, T)
        h_new, c_new = torch.empty_like(h0), torch.empty_like(h0)
        a_t, h_t, c_t = a.unbind(0), hs.unbind(0), cs.unbind(0)
        tau_t, masks = taus.unbind(0), _step_views(step_mask, T)
        # every step's gate views, made once (a view costs as much Python time as a small op)
        i_t, f_t, g_t, o_t = (v.unbind(0) for v in a.view(T, B, 4, H).unbind(2))
        if_t = a[:, :, : 2 * H].unbind(0)
        for t in range(T):
            rec.addmm_(a_t[t], rec.masked(h_t[t], t), w_t)
            act_(rec_act, if_t[t])
            g = act_(act, g_t[t])
            o = act_(rec_act, o_t[t])
            m = masks[t]
            c_dst = c_t[t + 1] if m is None else c_new
            h_dst = h_t[t + 1] if m is None else h_new
            torch.mul(f_t[t], c_t[t], out=c_dst).addcmul_(i_t[t], g)
            torch.mul(o, act_into(act, c_dst, tau_t[t]), out=h_dst)
            if m is not None:
                torch.where(m, c_new, c_t[t], out=c_t[t + 1])
                torch.where(m, h_new, h_t[t], out=h_t[t + 1])
        ctx.save_for_backward(w_ih, x if w_ih is not None else None, w_hh, a, hs, cs, taus,
                              step_mask, out_mask, rec_mask, rec.kept)  # fmt: skip
        ctx.act, ctx.rec_act = act, rec_act
        return _write_outputs(hs[1:], out_mask), hs[T].clone(), cs[T].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out, grad_h, grad_c):
        w_ih, x, w_hh, a, hs, cs, taus, step_mask, out_mask, rec_mask, kept = ctx.saved_tensors
        act, rec_act, rec = ctx.act, ctx.rec_act, _RecMask(rec_mask, kept=kept)
        T, B, H = hs.size(0) - 1, hs.size(1), hs.size(2)
        dy = _step_views(time_major_grad(grad_out, out_mask), T)
        a4 = a.view(T, B, 4, H)
        a_t, (i_t, f_t, g_t, o_t) = a4.unbind(0), (v.unbind(0) for v in a4.unbind(2))
        masks, carry = [None] * T, [None] * T
        if step_mask is not None:  # held steps: no gate gradient, dh and dc pass through
            masks = _step_views(step_mask.to(a.dtype), T)  # float: a bool operand is slow
            carry = _step_views((~step_mask).to(a.dtype), T)
            f_t = _step_views(torch.where(step_mask, a4[:, :, 1], 1.0), T)
        acc = _ChunkGrads(ctx.needs_input_grad, x, w_ih, hs, rec, 4 * H)
        grad = _StateGrad(grad_h, hs[0], dy, rec, carry)
        dc = _start(grad_c, cs[0])
        dc_b = dc[:, None]  # (B, 1, H), broadcast over the three dc-driven gates
        # per step: p = [g σ'(i), c_{t-1} σ'(f), i act'(g), τ σ'(o)], p_c = o act'(τ)
        p, p_c = a.new_empty(B, 4, H), a.new_empty(B, H)
        p_i, p_f, p_g, p_o = p.unbind(1)
        c_t, tau_t, chunk = cs.unbind(0), taus.unbind(0), acc.chunk
        dg_flat = acc.step_views()
        dg_t = [v.view(B, 4, H) for v in dg_flat]
        for t in range(T - 1, -1, -1):
            dh, m, k = grad.dh, masks[t], t % chunk
            act_grad_into(rec_act, a_t[t], p)
            act_grad_into(act, g_t[t], p_g)
            p_i.mul_(g_t[t])
            p_f.mul_(c_t[t])
            p_g.mul_(i_t[t])
            p_o.mul_(tau_t[t])
            act_grad_into(act, tau_t[t], p_c).mul_(o_t[t])
            if m is not None:
                p.mul_(m[:, None])
                p_c.mul_(m)
            dc.addcmul_(dh, p_c)
            torch.mul(p[:, :3], dc_b, out=dg_t[k][:, :3])
            torch.mul(dh, p_o, out=dg_t[k][:, 3])
            dc.mul_(f_t[t])  # held steps: f is 1 there
            grad.back(t, dg_flat[k], w_hh)
            if k == 0:
                acc.flush(t)
        dx, dw_ih, dw_hh = acc.grads()
        dh0 = grad.dh if ctx.needs_input_grad[4] else None
        dc0 = dc if ctx.needs_input_grad[5] else None
        return dx, dw_ih, dw_hh, None, dh0, dc0, None, None, None, None, None


class GRUFunction(torch.autograd.Function):
    r"""GRU (gates r, z, n) over all T steps, either form (the last argument,
    ``reset_after``); see :class:`rnnlab.layers.cells.GRUCell`.

    Backward, with ``dh_t`` the state gradient plus the output gradient
    (``h_t = n + z ⊙ (h_{t-1} - n)``, ``h̃_g = m_g ⊙ h_{t-1}``)::

        dz = dh ⊙ (h_{t-1} - n) ⊙ σ'(z),   dn = dh ⊙ (1 - z) ⊙ act'(n)
        reset_after:  dr = dn ⊙ (W_hn h̃_n + b_hn) ⊙ σ'(r);   d(W_hn h̃_n) = dn ⊙ r
                      dh_{t-1} = dh ⊙ z + Σ_gates ([dr dz d(W_hn h̃_n)] W_hh) ⊙ m
        textbook:     d(r ⊙ h̃_n) = dn W_hn;   dr = d(r ⊙ h̃_n) ⊙ h̃_n ⊙ σ'(r)
                      dh_{t-1} = dh ⊙ z + Σ_{r,z} ([dr dz] W_hrz) ⊙ m + d(r ⊙ h̃_n) ⊙ r ⊙ m_n
    """

    @staticmethod
    def forward(ctx, x, w_ih, w_hh, b_hn, h0, c0, step_mask, out_mask, rec_mask, act, rec_act,
                reset_after=True):  # fmt: skip
        ctx.set_materialize_grads(False)
        T, (B, H) = x.size(0), h0.shape
        a = project(x, w_ih, 3 * H)  # the gates' input half, then (in place) the gates
        hs = x.new_empty(T + 1, B, H)
        hs[0] = h0
        # reset_after: W_hn h̃ + b_hn for every step; textbook: a (B, H) buffer for r ⊙ h̃
        hn = x.new_empty(T, B, H) if reset_after else torch.empty_like(h0)
        w_t = _transposed(w_hh)
        w_rz_t, w_n_t = w_t[:, : 2 * H], w_t[:, 2 * H :]
        rec = _RecMask(rec_mask, T)
        diff, h_new = torch.empty_like(h0), torch.empty_like(h0)
        h_t, masks = hs.unbind(0), _step_views(step_mask, T)
        hn_t = hn.unbind(0) if reset_after else None
        # every step's gate views, made once (a view costs as much Python time as a small op)
        rz_t, n_t = a[:, :, : 2 * H].unbind(0), a[:, :, 2 * H :].unbind(0)
        r_t, z_t = a[:, :, :H].unbind(0), a[:, :, H : 2 * H].unbind(0)
        for t in range(T):
            hin = rec.masked(h_t[t], t)
            act_(rec_act, rec.addmm_(rz_t[t], hin, w_rz_t))
            r, z, n, h_n = r_t[t], z_t[t], n_t[t], rec.gate(hin, 2)
            if reset_after:
                if b_hn is None:
                    torch.mm(h_n, w_n_t, out=hn_t[t])
                else:
                    torch.addmm(b_hn, h_n, w_n_t, out=hn_t[t])
                n.addcmul_(r, hn_t[t])
            else:
                n.addmm_(torch.mul(r, h_n, out=hn), w_n_t)
            act_(act, n)
            m = masks[t]
            dst = h_t[t + 1] if m is None else h_new
            torch.addcmul(n, z, torch.sub(h_t[t], n, out=diff), out=dst)
            if m is not None:
                torch.where(m, h_new, h_t[t], out=h_t[t + 1])
        saved_hn = hn if reset_after else None
        ctx.save_for_backward(w_ih, x if w_ih is not None else None, w_hh, a, hs, saved_hn,
                              step_mask, out_mask, rec_mask, rec.kept)  # fmt: skip
        ctx.act, ctx.rec_act, ctx.reset_after = act, rec_act, reset_after
        return _write_outputs(hs[1:], out_mask), hs[T].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out, grad_h):
        w_ih, x, w_hh, a, hs, hn, step_mask, out_mask, rec_mask, kept = ctx.saved_tensors
        act, rec_act, reset_after = ctx.act, ctx.rec_act, ctx.reset_after
        rec = _RecMask(rec_mask, kept=kept)
        T, B, H = hs.size(0) - 1, hs.size(1), hs.size(2)
        r, z, n = a.view(T, B, 3, H).unbind(2)
        dy = _step_views(time_major_grad(grad_out, out_mask), T)
        p_z = (hs[:T] - n).mul_(act_grad(rec_act, z))  # dz_pre = dh ⊙ p_z
        p_n = (1.0 - z).mul_(act_grad(act, n))  # dn_pre = dh ⊙ p_n
        hin_n = None if reset_after else rec.inputs(hs[:T], 2)  # h̃_n, textbook only
        p_r = (hn if reset_after else hin_n) * act_grad(rec_act, r)
        z_c = z
        if step_mask is not None:  # held steps: no gate gradient, dh passes through
            p_z.mul_(step_mask)
            p_n.mul_(step_mask)
            z_c = torch.where(step_mask, z, torch.ones((), dtype=a.dtype))
        dg = torch.empty(T, B, 3, H, dtype=a.dtype, device=a.device)
        dn = torch.empty(T, B, H, dtype=a.dtype, device=a.device) if reset_after else None
        drh = torch.empty_like(hs[0])
        w_rz, w_n = w_hh[: 2 * H], w_hh[2 * H :]
        grad = _StateGrad(grad_h, hs[0], dy, rec, _step_views(z_c, T))
        pz_t, pn_t, pr_t, r_t = (v.unbind(0) for v in (p_z, p_n, p_r, r))
        dr_t, dz_t, d3_t = (v.unbind(0) for v in dg.unbind(2))  # d3: d(W_hn h̃) or dn
        dg3 = dg.view(T, B, 3 * H)
        dg_t, drz_t = dg3.unbind(0), dg3[:, :, : 2 * H].unbind(0)
        dn_t = dn.unbind(0) if reset_after else d3_t
        for t in range(T - 1, -1, -1):
            dh = grad.dh
            torch.mul(dh, pz_t[t], out=dz_t[t])
            torch.mul(dh, pn_t[t], out=dn_t[t])
            if reset_after:  # dg[t] = [dr, dz, d(W_hn h̃)]; the input side's dn is dn[t]
                torch.mul(dn_t[t], pr_t[t], out=dr_t[t])
                torch.mul(dn_t[t], r_t[t], out=d3_t[t])
                grad.back(t, dg_t[t], w_hh)
            else:  # dg[t] = [dr, dz, dn]; the reset gate sits between two matmuls
                torch.mm(dn_t[t], w_n, out=drh)
                torch.mul(drh, pr_t[t], out=dr_t[t])
                grad.back(t, drz_t[t], w_rz, extra=(drh, r_t[t], 2))
        flat = dg.view(T * B, 3 * H)
        dw_hh = db_hn = None
        if ctx.needs_input_grad[2]:
            dw_hh = torch.empty_like(w_hh)
            if reset_after:
                rec.weight_grad(flat, hs[:T], dw_hh)
            else:
                rec.weight_grad(flat[:, : 2 * H], hs[:T], dw_hh[: 2 * H])
                rh = (r * hin_n).reshape(T * B, H)
                dw_hh[2 * H :].copy_(torch.mm(rh.t(), flat[:, 2 * H :]).t())
        if ctx.needs_input_grad[3]:
            db_hn = flat[:, 2 * H :].sum(0)
        if reset_after:
            dg[:, :, 2] = dn  # now the gradient of the projected inputs [dr, dz, dn]
        dh0 = grad.dh if ctx.needs_input_grad[4] else None
        dx, dw_ih = project_grads(ctx.needs_input_grad[:2], x, w_ih, dg.view(T, B, 3 * H))
        return dx, dw_ih, dw_hh, db_hn, dh0, *(None,) * 7
