"""Fused multi-step IF/LIF neurons for BPTT: a layer's whole T-step recurrence is one autograd node.

Dynamics (the engine's contract, see `spikebench.spiking`), per step t = 1..T:
    h_t = leak * v_{t-1} + I_t          pre-reset membrane potential
    s_t = H(h_t - threshold)            spike (Heaviside; surrogate derivative in backward)
    v_t = h_t - threshold * s_t         reset "subtract"
    v_t = h_t * (1 - s_t)               reset "zero"
with v_0 = v_init * threshold. `I_t` is a (T, ...) current, or one constant (...) current
for every step (the analog first layer).

Why fuse: the step-by-step autograd graph of this recurrence holds ~10 nodes per step and
layer; each `current[t]` slice's backward allocates and zero-fills a whole (T, ...) tensor,
and every intermediate is a fresh tensor. Here the forward runs the loop without a graph
into two preallocated (T, ...) buffers (the pre-reset potentials h, which are all the
surrogate needs, and the spikes), and the backward is one explicit reverse-time loop.

Backward. With sg_t = surrogate'(h_t - threshold), the gradient reaching h_t is
    gh_t = c_t + a_t * gv_t,    gv_t = dL/dv_t = leak * gh_{t+1}  (gv_T = dL/dv_T),
    c_t = dL/ds_t * sg_t,
    a_t = 1 - threshold * sg_t                  (subtract)
    a_t = (1 - s_t) - h_t * sg_t                (zero)
(the reset stays differentiable, as in the out-of-place reference), so the reverse loop is
one fused multiply-add per step; everything else is computed over all T at once:
    dL/dI_t = gh_t (summed over t for a constant current),
    dL/dthreshold = -sum c - sum gv * (s - threshold sg)   (subtract)
                  = -sum c + sum gv * h sg                  (zero)
                    + v_init * sum gv_0,
    dL/dleak = sum_t gh_t * v_{t-1}.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from spikebench.errors import ModelError

RESETS = ("subtract", "zero")
SURROGATES = ("fast_sigmoid", "atan")


def surrogate_derivative(u: torch.Tensor, surrogate: str, alpha: float, *, inplace: bool = False) -> torch.Tensor:
    """The surrogate derivative of H at `u` (= h - threshold), the same formulas as `spike_function`.

    fast_sigmoid: 1 / (1 + alpha |u|)^2;  atan: (alpha / 2) / (1 + (pi / 2 alpha u)^2).
    inplace: overwrite `u` (saves one (T, ...) buffer in backward).
    """
    out = u if inplace else u.clone()
    if surrogate == "fast_sigmoid":
        return out.abs_().mul_(alpha).add_(1.0).square_().reciprocal_()
    if surrogate == "atan":
        return out.mul_(math.pi / 2 * alpha).square_().add_(1.0).reciprocal_().mul_(alpha / 2)
    raise ModelError(f"unknown surrogate {surrogate!r}; one of {', '.join(SURROGATES)}")


class MultiStepSpike(torch.autograd.Function):
    """One spiking layer over T steps: (current, threshold, leak) -> (spikes (T, M), final v (M)).

    current: (T, M) per-step currents, or (M,) one constant current (its gradient is summed
    over T). threshold and leak: 0-dim tensors (learnable or not). Inputs are flat so that
    all neuron arithmetic is layout-free; `multistep_spikes` handles shapes and layouts.
    The final potential is returned for carrying state; it is not differentiable.
    """

    @staticmethod
    def forward(ctx: Any, current: torch.Tensor, threshold: torch.Tensor, leak: torch.Tensor, steps: int,
                subtract: bool, surrogate: str, alpha: float, v_init: float) -> tuple[torch.Tensor, torch.Tensor]:
        temporal = current.dim() == 2
        theta, lam = float(threshold), float(leak)
        size = current.shape[-1]
        h = current.new_empty((steps, size))
        spikes = current.new_empty((steps, size))
        v = current.new_zeros(size)
        if v_init:
            v.add_(v_init * threshold.detach().to(v))  # same rounding as the reference's zeros + v_init * threshold
        for t in range(steps):
            i_t = current[t] if temporal else current
            if lam != 1.0:  # mul then add, not a fused multiply-add: bit-identical to the reference
                torch.add(torch.mul(v, lam), i_t, out=h[t])
            else:
                torch.add(v, i_t, out=h[t])
            torch.ge(h[t], theta, out=spikes[t])  # h >= theta  <=>  h - theta >= 0 exactly in IEEE arithmetic
            if subtract:
                torch.sub(h[t], spikes[t], alpha=theta, out=v)
            else:
                torch.addcmul(h[t], h[t], spikes[t], value=-1.0, out=v)  # h - h s: exactly the reference's h (1 - s)
        ctx.save_for_backward(h, threshold, leak)
        ctx.settings = (temporal, subtract, surrogate, alpha, v_init)
        ctx.mark_non_differentiable(v)
        ctx.set_materialize_grads(False)  # no zero-filled (T, M) gradient when the spikes get none
        return spikes, v

    @staticmethod
    def backward(ctx: Any, grad_spikes: torch.Tensor | None, grad_v: torch.Tensor | None) -> tuple:
        h, threshold, leak = ctx.saved_tensors
        temporal, subtract, surrogate, alpha, v_init = ctx.settings
        theta, lam = float(threshold), float(leak)
        need_current, need_threshold, need_leak = ctx.needs_input_grad[:3]
        steps = h.shape[0]
        if grad_spikes is None:
            grad_spikes = torch.zeros_like(h)
        sg = surrogate_derivative(h - theta, surrogate, alpha, inplace=True)
        spiked = h >= theta if (need_threshold and subtract) or not subtract or need_leak else None
        gh = grad_spikes * sg  # c_t now; overwritten by gh_t in the reverse loop below
        sum_c = gh.sum() if need_threshold else None
        if need_threshold and not subtract:
            b = h * sg  # gtheta's carry term h sg (kept: the loop overwrites nothing of it)
        else:
            b = None
        # a_t, built in sg's buffer (sg is not needed afterwards)
        if subtract:
            a = sg.mul_(-theta).add_(1.0)
        else:
            a = sg.mul_(h).neg_().add_(1.0).sub_(spiked.to(h.dtype))
        if need_threshold and subtract:
            b = a + spiked.to(h.dtype) - 1.0  # s - theta sg = s - (1 - a)
        if grad_v is not None:
            gh[-1].addcmul_(a[-1], grad_v)
        for t in range(steps - 2, -1, -1):
            gh[t].addcmul_(a[t], gh[t + 1], value=lam)
        grad_current = grad_threshold = grad_leak = None
        if need_threshold:
            carry = lam * torch.dot(gh[1:].reshape(-1), b[:-1].reshape(-1)) if steps > 1 else gh.new_zeros(())
            if grad_v is not None:
                carry = carry + torch.dot(grad_v, b[-1])
            total = -sum_c - carry if subtract else -sum_c + carry
            if v_init:
                total = total + v_init * lam * gh[0].sum()
            grad_threshold = total.reshape(threshold.shape).to(threshold.dtype)
        if need_leak:
            v_prev = h[:-1] - spiked[:-1].to(h.dtype) * theta if subtract else h[:-1] * (~spiked[:-1]).to(h.dtype)
            total = torch.dot(gh[1:].reshape(-1), v_prev.reshape(-1)) if steps > 1 else gh.new_zeros(())
            if v_init:
                total = total + v_init * theta * gh[0].sum()
            grad_leak = total.reshape(leak.shape).to(leak.dtype)
        if need_current:
            grad_current = gh if temporal else gh.sum(0)
        return grad_current, grad_threshold, grad_leak, None, None, None, None, None


def _physical_order(x: torch.Tensor) -> list[int] | None:
    """The dim order in which `x` is stored contiguously (NHWC -> N, H, W, C), or None if not dense."""
    order = sorted(range(x.dim()), key=lambda d: -x.stride(d))
    return order if x.permute(order).is_contiguous() else None


def multistep_spikes(current: torch.Tensor, threshold: torch.Tensor, leak: torch.Tensor, steps: int, *, temporal: bool,
                     reset: str = "subtract", surrogate: str = "fast_sigmoid", alpha: float = 10.0,
                     v_init: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Spikes (steps, *shape) and final potential (*shape) of one IF/LIF layer, as one autograd node.

    current: (steps, *shape) if `temporal`, else (*shape), the same current at every step.
    threshold, leak: 0-dim tensors; gradients flow to them when they require grad.
    v_init: initial potential as a fraction of the threshold.
    The spikes keep the memory layout of one step of `current` (an NHWC step stays NHWC).
    """
    if reset not in RESETS:
        raise ModelError(f"SNN reset {reset!r} unknown; use one of {', '.join(RESETS)}")
    if surrogate not in SURROGATES:
        raise ModelError(f"unknown surrogate {surrogate!r}; one of {', '.join(SURROGATES)}")
    if steps < 1:
        raise ModelError(f"timesteps must be >= 1, got {steps}")
    if temporal and current.shape[0] != steps:
        raise ModelError(f"a temporal current has {current.shape[0]} steps, expected {steps}")
    step_shape = current.shape[1:] if temporal else current.shape
    one_step = current[0] if temporal else current
    order = _physical_order(one_step) or list(range(one_step.dim()))
    # the neuron math is elementwise: run it on the step's physical memory order, flat
    if temporal:
        flat = current.permute([0, *(d + 1 for d in order)]).reshape(steps, -1)
    else:
        flat = current.permute(order).reshape(-1)
    spikes, v = MultiStepSpike.apply(flat, threshold, leak, steps, reset == "subtract", surrogate, float(alpha), float(v_init))
    stored = [step_shape[d] for d in order]
    inverse = [order.index(d) for d in range(len(order))]
    spikes = spikes.view(steps, *stored).permute([0, *(d + 1 for d in inverse)])
    return spikes, v.view(stored).permute(inverse)
