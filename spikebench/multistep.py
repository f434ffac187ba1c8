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
into two recycled (T, ...) buffers (the pre-reset potentials h, which are all the
surrogate needs, and the spikes), and the backward is one explicit reverse-time loop.

Backward. With sg_t = surrogate'(h_t - threshold), the gradient reaching h_t is
    gh_t = c_t + a_t * gv_t,    gv_t = dL/dv_t = leak * gh_{t+1}  (gv_T = dL/dv_T),
    c_t = dL/ds_t * sg_t,
    a_t = 1 - threshold * sg_t                  (subtract)
    a_t = (1 - s_t) - h_t * sg_t                (zero)
(the reset stays differentiable, as in the out-of-place reference), so the carry is one
fused multiply-add per step. The reverse loop recomputes sg_t, s_t and v_{t-1} from h in
one-step (M) work buffers (no (T, M) temporaries) and accumulates, in the same pass:
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


# Recycled (T, M) work buffers. A fresh buffer this large is mmapped by malloc and every
# page faults on first touch, which costs more than the neuron arithmetic itself (~3x on
# the forward pass). Buffers go back to the pool at the end of `backward`; a pooled buffer
# that a retained graph still holds is caught by autograd's version check (every `out=`
# write bumps the version), never silently reused.
_POOL: dict[tuple, list[torch.Tensor]] = {}
_POOL_DEPTH = 4


def _take(shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    free = _POOL.get((shape, like.dtype, like.device))
    return free.pop() if free else like.new_empty(shape)


def _give(*buffers: torch.Tensor | None) -> None:
    for buffer in buffers:
        if buffer is not None:
            free = _POOL.setdefault((tuple(buffer.shape), buffer.dtype, buffer.device), [])
            if len(free) < _POOL_DEPTH:
                free.append(buffer)


def clear_workspace() -> None:
    """Release the recycled work buffers (they are kept between training steps for speed)."""
    _POOL.clear()


class MultiStepSpike(torch.autograd.Function):
    """One spiking layer over T steps: (current, threshold, leak) -> (spikes (T, M), final v (M)).

    current: (T, M) per-step currents, or (M,) one constant current (its gradient is summed
    over T). threshold and leak: 0-dim tensors (learnable or not). Inputs are flat so that
    all neuron arithmetic is layout-free; `multistep_spikes` handles shapes and layouts.
    The final potential is returned for carrying state; it is not differentiable.
    """

    @staticmethod
    def forward(ctx: Any, current: torch.Tensor, threshold: torch.Tensor, leak: torch.Tensor, steps: int,
                subtract: bool, surrogate: str, alpha: float, v_init: float, recycle: bool) -> tuple[torch.Tensor, torch.Tensor]:
        temporal = current.dim() == 2
        theta, lam = float(threshold), float(leak)
        size = current.shape[-1]
        h = _take((steps, size), current)
        spikes = _take((steps, size), current) if recycle else current.new_empty((steps, size))
        v = current.new_zeros(size)
        if v_init:
            v.add_(v_init * threshold.detach().to(v))  # same rounding as the reference's zeros + v_init * threshold
        for t in range(steps):
            i_t = current[t] if temporal else current
            if lam != 1.0:  # mul then add, not a fused multiply-add: bit-identical to the reference
                torch.mul(v, lam, out=v)
            torch.add(v, i_t, out=h[t])
            torch.ge(h[t], theta, out=spikes[t])  # h >= theta  <=>  h - theta >= 0 exactly in IEEE arithmetic
            if subtract:
                torch.sub(h[t], spikes[t], alpha=theta, out=v)
            else:
                torch.addcmul(h[t], h[t], spikes[t], value=-1.0, out=v)  # h - h s: exactly the reference's h (1 - s)
        ctx.save_for_backward(h, threshold, leak)
        ctx.settings = (temporal, subtract, surrogate, alpha, v_init)
        ctx.recycled_spikes = spikes if recycle else None
        ctx.mark_non_differentiable(v)
        ctx.set_materialize_grads(False)  # no zero-filled (T, M) gradient when the spikes get none
        return spikes, v

    @staticmethod
    def backward(ctx: Any, grad_spikes: torch.Tensor | None, grad_v: torch.Tensor | None) -> tuple:
        h, threshold, leak = ctx.saved_tensors
        temporal, subtract, surrogate, alpha, v_init = ctx.settings
        theta, lam = float(threshold), float(leak)
        need_current, need_threshold, need_leak = ctx.needs_input_grad[:3]
        steps, size = h.shape
        # One reverse pass, step by step: the work buffers are one step (M) each, so a step's
        # working set stays in cache and no (T, M) temporary is made; only the returned
        # per-step current gradient (temporal input) is a (T, M) tensor.
        grad_current = h.new_empty((steps, size)) if temporal and need_current else None
        work = [h.new_empty(size) for _ in range(4)]  # sg/a, spike, c/gh (x2: this step and the next)
        total_gh = h.new_zeros(size) if need_current and not temporal else None
        sum_c = torch.zeros((), dtype=torch.float64)
        carry = torch.zeros((), dtype=torch.float64)  # threshold: sum gv_t * b_t
        leak_sum = torch.zeros((), dtype=torch.float64)
        g_next = grad_v  # dL/dv_t for the current t is lam * gh_{t+1}, or grad_v at the last step
        g_scale = 1.0
        for t in range(steps - 1, -1, -1):
            sg = surrogate_derivative(torch.sub(h[t], theta, out=work[0]), surrogate, alpha, inplace=True)
            gh = grad_current[t] if grad_current is not None else work[2 + t % 2]
            if grad_spikes is None:
                gh.zero_()
            else:
                torch.mul(grad_spikes[t], sg, out=gh)  # c_t
            if need_threshold:
                sum_c += gh.sum(dtype=torch.float64)
            spiked = torch.ge(h[t], theta, out=work[1]) if need_threshold or not subtract else None
            if subtract:
                a = sg.mul_(-theta).add_(1.0)  # a_t = 1 - theta sg_t
                if need_threshold and g_next is not None:  # b_t = s_t - theta sg_t = a_t + s_t - 1
                    carry += g_scale * (torch.dot(g_next, a) + torch.dot(g_next, spiked) - g_next.sum()).double()
            else:
                a = sg.mul_(h[t])  # h_t sg_t (b_t of the zero reset) ...
                if need_threshold and g_next is not None:
                    carry -= g_scale * torch.dot(g_next, a).double()
                a = a.neg_().add_(1.0).sub_(spiked)  # ... then a_t = (1 - s_t) - h_t sg_t
            if g_next is not None:
                gh.addcmul_(a, g_next, value=g_scale)
            if need_leak:  # dL/dleak += gh_t . v_{t-1}
                if t > 0:
                    v_prev = torch.ge(h[t - 1], theta, out=work[1])
                    v_prev = torch.sub(h[t - 1], v_prev, alpha=theta, out=v_prev) if subtract else \
                        torch.addcmul(h[t - 1], h[t - 1], v_prev, value=-1.0, out=v_prev)
                    leak_sum += torch.dot(gh, v_prev).double()
                elif v_init:
                    leak_sum += v_init * theta * gh.sum(dtype=torch.float64)
            if total_gh is not None:
                total_gh += gh
            g_next, g_scale = gh, lam
        grad_threshold = grad_leak = None
        if need_threshold:
            total = -sum_c - carry
            if v_init:
                total = total + v_init * lam * g_next.sum(dtype=torch.float64)
            grad_threshold = total.to(threshold.dtype).reshape(threshold.shape)
        if need_leak:
            grad_leak = leak_sum.to(leak.dtype).reshape(leak.shape)
        _give(h, ctx.recycled_spikes)
        ctx.recycled_spikes = None
        return grad_current if temporal else total_gh, grad_threshold, grad_leak, None, None, None, None, None, None


def _physical_order(x: torch.Tensor) -> list[int] | None:
    """The dim order in which `x` is stored contiguously (NHWC -> N, H, W, C), or None if not dense."""
    order = sorted(range(x.dim()), key=lambda d: -x.stride(d))
    return order if x.permute(order).is_contiguous() else None


def multistep_spikes(current: torch.Tensor, threshold: torch.Tensor, leak: torch.Tensor, steps: int, *, temporal: bool,
                     reset: str = "subtract", surrogate: str = "fast_sigmoid", alpha: float = 10.0,
                     v_init: float = 0.0, recycle_spikes: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Spikes (steps, *shape) and final potential (*shape) of one IF/LIF layer, as one autograd node.

    current: (steps, *shape) if `temporal`, else (*shape), the same current at every step.
    threshold, leak: 0-dim tensors; gradients flow to them when they require grad.
    v_init: initial potential as a fraction of the threshold.
    recycle_spikes: the spikes' buffer is reused by a later call once this call's backward has
        run (no fresh 4-byte-per-neuron-step buffer each training step); only for callers that
        drop the spikes by then (the engine does: its spike_hook contract says copy at once).
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
    spikes, v = MultiStepSpike.apply(flat, threshold, leak, steps, reset == "subtract", surrogate, float(alpha), float(v_init),
                                     recycle_spikes)
    stored = [step_shape[d] for d in order]
    inverse = [order.index(d) for d in range(len(order))]
    spikes = spikes.view(steps, *stored).permute([0, *(d + 1 for d in inverse)])
    return spikes, v.view(stored).permute(inverse)


def retain_freed_memory() -> bool:
    """Keep freed memory in the process instead of handing it back to the OS (glibc only).

    A BPTT step frees and re-allocates the same few hundred MB every step. glibc serves
    blocks over its mmap threshold (at most 32 MB) with fresh mmaps and returns the heap's
    top beyond the trim threshold, so every step page-faults on first touch of each large
    tensor (~30% of a training step here, 0.68 -> 0.52 CPU s at T = 8, batch 128). Raising
    both thresholds (as MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ would at start-up)
    keeps the pages mapped: the resident size stays at the step's peak, which a training
    loop reaches every step anyway. Process-wide; idempotent. Returns whether glibc accepted it.
    """
    import ctypes
    import ctypes.util
    import platform

    if platform.system() != "Linux":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's mallopt parameter numbers (malloc.h)
        ok_mmap = libc.mallopt(m_mmap_threshold, ctypes.c_int(2**30))
        ok_trim = libc.mallopt(m_trim_threshold, ctypes.c_int(2**31 - 1))
    except (OSError, AttributeError):
        return False
    return bool(ok_mmap) and bool(ok_trim)
