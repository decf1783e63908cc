"""Hand-derived backpropagation through time, one ``torch.autograd.Function`` per cell.

Every function runs the whole sequence. Shapes: B batch, T time, I inputs, H hidden, G gates.
All take the same arguments, in this order::

    x (B, T, I), weight_ih (G*H, I), bias_ih (G*H,) | None, weight_hh (G*H, H),
    bias_hh (G*H,) | None (GRU reset_after only), h0 (B, H), c0 (B, H) | None (LSTM only),
    step_mask (T, B, 1) bool | None, out_mask (T, B, 1) | None, rec_mask (B, H) | None,
    activation, recurrent_activation

and return ``(outputs (B, T, H), h_T[, c_T])``. ``step_mask`` False holds the state at a
step (its gates get zero gradient); ``out_mask`` multiplies the outputs (0 where an output is
zeroed); ``rec_mask`` is the recurrent-dropout mask on the state entering the recurrent
matmul. Internally everything is time-major: the projected inputs ``x W_ih^T + b`` for all
steps are one matmul into a (T, B, G*H) buffer that each step then adds its recurrent matmul
to and overwrites, in place, with the gate activations.

Forward keeps: the gate activations (T, B, G*H), the states (T+1, B, H) (and the LSTM cell
states (T+1, B, H); GRU ``reset_after`` also the recurrent n-block ``W_hn h + b_hn``
(T, B, H)). Backward runs the recurrence in reverse with one (B, G*H) x (G*H, H) matmul per
step for the state gradient (the textbook GRU needs two: its reset gate acts between its
two recurrent matmuls), with every activation derivative that does not depend on the
incoming gradient formed for all steps at once before the loop; the weight gradients are
single matmuls over all B*T rows at the end (``dW_hh = dG^T H_prev``, ``dW_ih = dG^T X``,
``db = sum dG``).

Double backward is not supported (``once_differentiable``: a second derivative raises).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from .bptt_ops import act_, act_grad, act_into, input_grads, project, time_major_grad
from .bptt_ops import write_outputs as _write_outputs


def _start(grad: Tensor | None, like: Tensor) -> Tensor:
    return torch.zeros_like(like) if grad is None else grad.clone()


def _step_views(t: Tensor | None, T: int) -> list:
    """``t`` (T, ...) as a list of T views (one C++ call instead of T indexing calls)."""
    return [None] * T if t is None else list(t.unbind(0))


class _StateGrad:
    """The state-gradient recurrence shared by every backward pass:

        dh_{t-1} = (dG_t W_hh) ⊙ m  +  dh_t ⊙ carry_t  +  dy_{t-1}

    ``carry_t`` is what passes straight back to h_{t-1} (the GRU's z; 1 on held steps,
    0 elsewhere, for the other cells). Two (B, H) buffers swap roles each step, and when
    nothing is masked the whole update is one ``addmm``.
    """

    def __init__(self, grad_h: Tensor | None, like: Tensor, dy: list, rec_mask, carry: list):
        self.dh = _start(grad_h, like)
        if dy[-1] is not None:
            self.dh.add_(dy[-1])
        self.nxt = torch.empty_like(self.dh)
        self.dy, self.rec_mask, self.carry = dy, rec_mask, carry

    def back(self, t: int, dg_t: Tensor, w_hh: Tensor, extra=None) -> None:
        """Replace ``self.dh`` (the gradient of h_t) by that of h_{t-1}; ``extra = (u, v)``
        adds ``u ⊙ v`` to the gradient of the masked state before the mask."""
        dy = self.dy[t - 1] if t > 0 else None
        dh, nxt, carry = self.dh, self.nxt, self.carry[t]
        if self.rec_mask is None:  # one or two ops: dy + dh ⊙ carry + dG W_hh
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
                nxt.addcmul_(*extra)
        else:
            torch.mm(dg_t, w_hh, out=nxt)
            if extra is not None:
                nxt.addcmul_(*extra)
            nxt.mul_(self.rec_mask)
            if carry is not None:
                nxt.addcmul_(dh, carry)
            if dy is not None:
                nxt.add_(dy)
        self.dh, self.nxt = nxt, self.dh


class SimpleRNNFunction(torch.autograd.Function):
    r"""Elman recurrence ``h_t = act(W_ih x_t + b + W_hh (m ⊙ h_{t-1}))`` over all T steps.

    Backward: ``da_t = dh_t ⊙ act'(h_t)``, ``dh_{t-1} = (da_t W_hh) ⊙ m``.
    """

    @staticmethod
    def forward(ctx, x, w_ih, b_ih, w_hh, b_hh, h0, c0, step_mask, out_mask, rec_mask, act, _):
        ctx.set_materialize_grads(False)
        T = x.size(1)
        hs = x.new_empty(T + 1, *h0.shape)
        hs[0] = h0
        project(x.transpose(0, 1), w_ih, b_ih, out=hs[1:])
        w_t = w_hh.t()
        hin = torch.empty_like(h0) if rec_mask is not None else None
        steps, masks = hs.unbind(0), _step_views(step_mask, T)
        for t in range(T):
            h = steps[t] if hin is None else torch.mul(steps[t], rec_mask, out=hin)
            new = act_(act, steps[t + 1].addmm_(h, w_t))
            if masks[t] is not None:
                torch.where(masks[t], new, steps[t], out=new)
        ctx.save_for_backward(x, w_ih, w_hh, hs, step_mask, out_mask, rec_mask)
        ctx.act = act
        return _write_outputs(hs[1:], out_mask), hs[T].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out, grad_h):
        x, w_ih, w_hh, hs, step_mask, out_mask, rec_mask = ctx.saved_tensors
        T = hs.size(0) - 1
        dy = _step_views(time_major_grad(grad_out, out_mask), T)
        d = act_grad(ctx.act, hs[1:])  # (T, B, H)
        carry = [None] * T
        if step_mask is not None:  # held steps: no gradient into the cell, dh passes through
            d.mul_(step_mask)
            carry = _step_views((~step_mask).to(d.dtype), T)
        da = torch.empty_like(d)
        grad = _StateGrad(grad_h, hs[0], dy, rec_mask, carry)
        d_t, da_t = d.unbind(0), da.unbind(0)
        for t in range(T - 1, -1, -1):
            torch.mul(grad.dh, d_t[t], out=da_t[t])
            grad.back(t, da_t[t], w_hh)
        dx, dw_ih, db = input_grads(ctx, da, x, w_ih, 2)
        dw_hh = None
        if ctx.needs_input_grad[3]:
            hin = hs[:T] if rec_mask is None else hs[:T] * rec_mask
            dw_hh = torch.mm(da.view(-1, da.size(-1)).t(), hin.reshape(-1, hin.size(-1)))
        dh0 = grad.dh if ctx.needs_input_grad[5] else None
        return dx, dw_ih, db, dw_hh, None, dh0, None, None, None, None, None, None


class LSTMFunction(torch.autograd.Function):
    r"""LSTM (gates i, f, g, o) over all T steps; see :class:`rnnlab.layers.cells.LSTMCell`.

    Backward, with ``dh_t`` the state gradient plus the output gradient, ``τ_t = act(c_t)``::

        dc_t  += dh_t ⊙ o_t ⊙ act'(τ_t)          (dc_t arrives from step t+1 as dc ⊙ f)
        di, df, dg, do = dc_t ⊙ g ⊙ σ'(i), dc_t ⊙ c_{t-1} ⊙ σ'(f), dc_t ⊙ i ⊙ act'(g),
                         dh_t ⊙ τ_t ⊙ σ'(o)
        dh_{t-1} = ([di df dg do] W_hh) ⊙ m,   dc_{t-1} = dc_t ⊙ f
    """

    @staticmethod
    def forward(ctx, x, w_ih, b_ih, w_hh, b_hh, h0, c0, step_mask, out_mask, rec_mask, act, rec):
        ctx.set_materialize_grads(False)
        T, (B, H) = x.size(1), h0.shape
        a = project(x.transpose(0, 1), w_ih, b_ih)  # (T, B, 4H): pre-activations, then gates
        hs = x.new_empty(T + 1, B, H)
        cs = x.new_empty(T + 1, B, H)
        hs[0], cs[0] = h0, c0
        w_t = w_hh.t()
        hin = torch.empty_like(h0) if rec_mask is not None else None
        tau = torch.empty_like(h0)
        h_new, c_new = torch.empty_like(h0), torch.empty_like(h0)
        a_t, h_t, c_t, masks = a.unbind(0), hs.unbind(0), cs.unbind(0), _step_views(step_mask, T)
        for t in range(T):
            h = h_t[t] if hin is None else torch.mul(h_t[t], rec_mask, out=hin)
            g4 = a_t[t].addmm_(h, w_t)
            act_(rec, g4[:, : 2 * H])
            act_(act, g4[:, 2 * H : 3 * H])
            act_(rec, g4[:, 3 * H :])
            i, f, g, o = g4.split(H, 1)
            m = masks[t]
            c_dst = c_t[t + 1] if m is None else c_new
            h_dst = h_t[t + 1] if m is None else h_new
            torch.mul(f, c_t[t], out=c_dst).addcmul_(i, g)
            torch.mul(o, act_into(act, c_dst, tau), out=h_dst)
            if m is not None:
                torch.where(m, c_new, c_t[t], out=c_t[t + 1])
                torch.where(m, h_new, h_t[t], out=h_t[t + 1])
        ctx.save_for_backward(x, w_ih, w_hh, a, hs, cs, step_mask, out_mask, rec_mask)
        ctx.act, ctx.rec = act, rec
        return _write_outputs(hs[1:], out_mask), hs[T].clone(), cs[T].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out, grad_h, grad_c):
        x, w_ih, w_hh, a, hs, cs, step_mask, out_mask, rec_mask = ctx.saved_tensors
        act, rec = ctx.act, ctx.rec
        T, B, H = hs.size(0) - 1, hs.size(1), hs.size(2)
        i, f, g, o = a.view(T, B, 4, H).unbind(2)
        dy = _step_views(time_major_grad(grad_out, out_mask), T)
        # every factor that does not depend on the incoming gradient, for all steps at once:
        # d{i,f,g}_pre = dc ⊙ pre[:, :, :3], do_pre = dh ⊙ pre[:, :, 3], dc += dh ⊙ p_c
        pre = torch.empty(T, B, 4, H, dtype=a.dtype, device=a.device)
        tau = act_into(act, cs[1:], pre[:, :, 3])
        p_c = act_grad(act, tau).mul_(o)
        tau.mul_(act_grad(rec, o))
        torch.mul(g, act_grad(rec, i), out=pre[:, :, 0])
        torch.mul(cs[:T], act_grad(rec, f), out=pre[:, :, 1])
        torch.mul(i, act_grad(act, g), out=pre[:, :, 2])
        f_c, carry = f, [None] * T
        if step_mask is not None:  # held steps: no gate gradient, dh and dc pass through
            p_c.mul_(step_mask)
            pre.mul_(step_mask[..., None])
            f_c = torch.where(step_mask, f, torch.ones((), dtype=a.dtype))
            carry = _step_views((~step_mask).to(a.dtype), T)
        dg = torch.empty(T, B, 4, H, dtype=a.dtype, device=a.device)
        grad = _StateGrad(grad_h, hs[0], dy, rec_mask, carry)
        dc = _start(grad_c, cs[0])
        pre_t, p_c_t, f_t, dg_t = pre.unbind(0), p_c.unbind(0), f_c.unbind(0), dg.unbind(0)
        for t in range(T - 1, -1, -1):
            dh, dgt, pt = grad.dh, dg_t[t], pre_t[t]
            dc.addcmul_(dh, p_c_t[t])
            torch.mul(pt[:, :3], dc[:, None], out=dgt[:, :3])
            torch.mul(dh, pt[:, 3], out=dgt[:, 3])
            dc.mul_(f_t[t])
            grad.back(t, dgt.view(B, 4 * H), w_hh)
        dg = dg.view(T, B, 4 * H)
        dx, dw_ih, db = input_grads(ctx, dg, x, w_ih, 2)
        dw_hh = None
        if ctx.needs_input_grad[3]:
            hin = hs[:T] if rec_mask is None else hs[:T] * rec_mask
            dw_hh = torch.mm(dg.view(T * B, 4 * H).t(), hin.reshape(T * B, H))
        dh0 = grad.dh if ctx.needs_input_grad[5] else None
        dc0 = dc if ctx.needs_input_grad[6] else None
        return dx, dw_ih, db, dw_hh, None, dh0, dc0, None, None, None, None, None


class GRUFunction(torch.autograd.Function):
    r"""GRU (gates r, z, n) over all T steps, either form (the last argument,
    ``reset_after``); see :class:`rnnlab.layers.cells.GRUCell`.

    Backward, with ``dh_t`` the state gradient plus the output gradient
    (``h_t = n + z ⊙ (h_{t-1} - n)``)::

        dz = dh ⊙ (h_{t-1} - n) ⊙ σ'(z),   dn = dh ⊙ (1 - z) ⊙ act'(n)
        reset_after:  dr = dn ⊙ (W_hn h̃ + b_hn) ⊙ σ'(r);   d(W_hn h̃) = dn ⊙ r
                      dh_{t-1} = dh ⊙ z + ([dr dz d(W_hn h̃)] W_hh) ⊙ m
        textbook:     d(r ⊙ h̃) = dn W_hn;   dr = d(r ⊙ h̃) ⊙ h̃ ⊙ σ'(r)
                      dh_{t-1} = dh ⊙ z + ([dr dz] W_hrz + d(r ⊙ h̃) ⊙ r) ⊙ m
    """

    @staticmethod
    def forward(ctx, x, w_ih, b_ih, w_hh, b_hh, h0, c0, step_mask, out_mask, rec_mask, act, rec,
                reset_after=True):  # fmt: skip
        ctx.set_materialize_grads(False)
        T, (B, H) = x.size(1), h0.shape
        a = project(x.transpose(0, 1), w_ih, b_ih)  # (T, B, 3H): pre-activations, then gates
        if b_hh is not None:
            a[:, :, : 2 * H] += b_hh[: 2 * H]
        b_n = b_hh[2 * H :] if b_hh is not None else None
        hs = x.new_empty(T + 1, B, H)
        hs[0] = h0
        # reset_after: W_hn h̃ + b_hn for every step; textbook: a (B, H) buffer for r ⊙ h̃
        hn = x.new_empty(T, B, H) if reset_after else torch.empty_like(h0)
        w_rz_t, w_n_t = w_hh[: 2 * H].t(), w_hh[2 * H :].t()
        hin = torch.empty_like(h0) if rec_mask is not None else None
        diff, h_new = torch.empty_like(h0), torch.empty_like(h0)
        a_t, h_t, masks = a.unbind(0), hs.unbind(0), _step_views(step_mask, T)
        hn_t = hn.unbind(0) if reset_after else None
        for t in range(T):
            h = h_t[t] if hin is None else torch.mul(h_t[t], rec_mask, out=hin)
            at = a_t[t]
            r, z = act_(rec, at[:, : 2 * H].addmm_(h, w_rz_t)).split(H, 1)
            n = at[:, 2 * H :]
            if reset_after:
                if b_n is None:
                    torch.mm(h, w_n_t, out=hn_t[t])
                else:
                    torch.addmm(b_n, h, w_n_t, out=hn_t[t])
                n.addcmul_(r, hn_t[t])
            else:
                n.addmm_(torch.mul(r, h, out=hn), w_n_t)
            act_(act, n)
            m = masks[t]
            torch.addcmul(
                n, z, torch.sub(h_t[t], n, out=diff), out=h_t[t + 1] if m is None else h_new
            )
            if m is not None:
                torch.where(m, h_new, h_t[t], out=h_t[t + 1])
        saved_hn = hn if reset_after else None
        ctx.save_for_backward(x, w_ih, w_hh, a, hs, saved_hn, step_mask, out_mask, rec_mask)
        ctx.act, ctx.rec, ctx.reset_after = act, rec, reset_after
        return _write_outputs(hs[1:], out_mask), hs[T].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out, grad_h):
        x, w_ih, w_hh, a, hs, hn, step_mask, out_mask, rec_mask = ctx.saved_tensors
        act, rec, reset_after = ctx.act, ctx.rec, ctx.reset_after
        T, B, H = hs.size(0) - 1, hs.size(1), hs.size(2)
        r, z, n = a.view(T, B, 3, H).unbind(2)
        dy = _step_views(time_major_grad(grad_out, out_mask), T)
        hin = hs[:T] if rec_mask is None else hs[:T] * rec_mask
        p_z = (hs[:T] - n).mul_(act_grad(rec, z))  # dz_pre = dh ⊙ p_z
        p_n = (1.0 - z).mul_(act_grad(act, n))  # dn_pre = dh ⊙ p_n
        p_r = (hn if reset_after else hin) * act_grad(rec, r)
        z_c = z
        if step_mask is not None:  # held steps: no gate gradient, dh passes through
            p_z.mul_(step_mask)
            p_n.mul_(step_mask)
            z_c = torch.where(step_mask, z, torch.ones((), dtype=a.dtype))
        dg = torch.empty(T, B, 3, H, dtype=a.dtype, device=a.device)
        dn = torch.empty(T, B, H, dtype=a.dtype, device=a.device) if reset_after else None
        drh = torch.empty_like(hs[0])
        w_rz, w_n = w_hh[: 2 * H], w_hh[2 * H :]
        grad = _StateGrad(grad_h, hs[0], dy, rec_mask, _step_views(z_c, T))
        dg_t, pz_t, pn_t, pr_t, r_t = (v.unbind(0) for v in (dg, p_z, p_n, p_r, r))
        dn_t = dn.unbind(0) if reset_after else None
        for t in range(T - 1, -1, -1):
            dh, dgt = grad.dh, dg_t[t]
            torch.mul(dh, pz_t[t], out=dgt[:, 1])
            if reset_after:  # dg[t] = [dr, dz, d(W_hn h̃)]; the input side's dn is dn[t]
                torch.mul(dh, pn_t[t], out=dn_t[t])
                torch.mul(dn_t[t], pr_t[t], out=dgt[:, 0])
                torch.mul(dn_t[t], r_t[t], out=dgt[:, 2])
                grad.back(t, dgt.view(B, 3 * H), w_hh)
            else:  # dg[t] = [dr, dz, dn]; the reset gate sits between two matmuls
                torch.mul(dh, pn_t[t], out=dgt[:, 2])
                torch.mm(dgt[:, 2], w_n, out=drh)
                torch.mul(drh, pr_t[t], out=dgt[:, 0])
                grad.back(t, dgt[:, :2].reshape(B, 2 * H), w_rz, extra=(drh, r_t[t]))
        flat = dg.view(T * B, 3 * H)
        dw_hh = db_hh = None
        if ctx.needs_input_grad[3]:
            dw_hh = torch.empty_like(w_hh)
            hin2 = hin.reshape(T * B, H)
            if reset_after:
                torch.mm(flat.t(), hin2, out=dw_hh)
            else:
                torch.mm(flat[:, : 2 * H].t(), hin2, out=dw_hh[: 2 * H])
                torch.mm(flat[:, 2 * H :].t(), (r * hin).reshape(T * B, H), out=dw_hh[2 * H :])
        if ctx.needs_input_grad[4]:
            db_hh = flat.sum(0)
        if reset_after:
            dg[:, :, 2] = dn  # now the gradient of the projected inputs [dr, dz, dn]
        dx, dw_ih, db = input_grads(ctx, dg.view(T, B, 3 * H), x, w_ih, 2)
        dh0 = grad.dh if ctx.needs_input_grad[5] else None
        return dx, dw_ih, db, dw_hh, db_hh, dh0, None, None, None, None, None, None, None
