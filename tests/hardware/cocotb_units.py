"""cocotb unit tests of the RTL blocks against small Python reference models.

Each test drives random vectors (seed from SNN_SEED, logged) into one block of
hardware/tb/snn_units_tb.v and compares every output.
"""

from __future__ import annotations

import os

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge, Timer

VECTORS = int(os.environ.get("SNN_UNIT_VECTORS", "2000"))


def _rng(salt: int) -> np.random.Generator:
    return np.random.default_rng([int(os.environ.get("SNN_SEED", "0")), salt])


def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def fire_reference(v: int, i0: int, bias: int, use_i0: bool, thr: int, reset_zero: bool, is_last: bool, vb: int = 8) -> tuple[int, int]:
    total = v + bias + (i0 if use_i0 else 0)
    s = min(max(total, -(2 ** (vb - 1))), 2 ** (vb - 1) - 1)
    spike = (not is_last) and s >= thr
    return (0 if reset_zero else s - thr) if spike else s, int(spike)


@cocotb.test()
async def fire_unit_matches_reference(tb) -> None:
    rng = _rng(1)
    for i in range(VECTORS):
        v, i0, bias = (int(a) for a in rng.integers(-2048, 2048, 3))
        thr = int(rng.integers(1, 128))
        use_i0, reset_zero, is_last = (bool(b) for b in rng.integers(0, 2, 3))
        tb.f_v.value, tb.f_i0.value, tb.f_bias.value = v & 0xFFF, i0 & 0xFFF, bias & 0xFFF
        tb.f_use_i0.value, tb.f_reset_zero.value, tb.f_is_last.value, tb.f_thr.value = use_i0, reset_zero, is_last, thr
        await Timer(1, "ns")
        want = fire_reference(v, i0, bias, use_i0, thr, reset_zero, is_last)
        got = (_signed(int(tb.f_v_next.value), 12), int(tb.f_spike.value))
        assert got == want, f"vector {i}: v={v} i0={i0} bias={bias} use_i0={use_i0} thr={thr} zero={reset_zero} last={is_last}: {got} != {want}"
    tb._log.info(f"fire unit: {VECTORS} random vectors match")


@cocotb.test()
async def lane_matches_reference(tb) -> None:
    rng = _rng(2)
    for i in range(VECTORS):
        w, toff = int(rng.integers(-32, 32)), int(rng.integers(-256, 256))
        dy, dx = (int(a) for a in rng.integers(-16, 16, 2))
        vbase, pp = int(rng.integers(0, 128)), int(rng.integers(0, 128))
        py, px, oh, ow, payload = (int(a) for a in rng.integers([0, 0, 1, 1, 0], [40, 40, 40, 40, 256]))
        entry = ((w & 0x3F) << 19) | ((toff & 0x1FF) << 10) | ((dy & 0x1F) << 5) | (dx & 0x1F)
        tb.l_entry.value, tb.l_vbase.value, tb.l_pp.value = entry, vbase, pp
        tb.l_py.value, tb.l_px.value, tb.l_oh.value, tb.l_ow.value, tb.l_payload.value = py, px, oh, ow, payload
        await Timer(1, "ns")
        valid = w != 0 and 0 <= py + dy < oh and 0 <= px + dx < ow
        assert int(tb.l_valid.value) == valid, f"vector {i}: valid {tb.l_valid.value} != {valid}"
        assert _signed(int(tb.l_product.value), 15) == w * payload, f"vector {i}: product"
        assert int(tb.l_target.value) == (vbase + pp + toff) & 0xFF, f"vector {i}: target"
    tb._log.info(f"lane: {VECTORS} random vectors match")


@cocotb.test()
async def event_decode_matches_reference(tb) -> None:
    rng = _rng(3)
    for i in range(VECTORS):
        c, y, x = int(rng.integers(0, 1024)), int(rng.integers(0, 256)), int(rng.integers(0, 256))
        ps, is_fc = int(rng.integers(0, 4)), bool(rng.integers(0, 2))
        in_w, ow = int(rng.integers(1, 64)), int(rng.integers(1, 64))
        in_plane = int(rng.integers(1, 64))
        tb.d_event.value, tb.d_ps.value, tb.d_is_fc.value = (c << 16) | (y << 8) | x, ps, is_fc
        tb.d_in_plane.value, tb.d_in_w.value, tb.d_ow.value = in_plane, in_w, ow
        await Timer(1, "ns")
        py, px = y >> ps, x >> ps
        key = (c * in_plane + py * in_w + px) if is_fc else c
        want = (key & 0xFFFF, 0 if is_fc else (py * ow + px) & 0xFFFF, 0 if is_fc else py, 0 if is_fc else px)
        got = tuple(int(s.value) for s in (tb.d_key, tb.d_pp, tb.d_py, tb.d_px))
        assert got == want, f"vector {i}: c={c} y={y} x={x} ps={ps} fc={is_fc}: {got} != {want}"
    tb._log.info(f"event decoder: {VECTORS} random vectors match")


@cocotb.test()
async def sram_reads_old_word_on_collision(tb) -> None:
    rng = _rng(4)
    model = {}
    await FallingEdge(tb.clk)
    for i in range(VECTORS):
        we, re = bool(rng.integers(0, 2)), bool(rng.integers(0, 2))
        waddr, raddr, wdata = int(rng.integers(0, 16)), int(rng.integers(0, 16)), int(rng.integers(0, 256))
        if re and raddr not in model:  # keep reads to written words
            re = False
        tb.s_we.value, tb.s_re.value, tb.s_waddr.value, tb.s_raddr.value, tb.s_wdata.value = we, re, waddr, raddr, wdata
        expect = model.get(raddr)
        await FallingEdge(tb.clk)
        if re:
            assert int(tb.s_rdata.value) == expect, f"vector {i}: read {raddr} gave {tb.s_rdata.value}, want {expect}"
        if we:
            model[waddr] = wdata
    tb._log.info(f"sram: {VECTORS} random cycles match")
