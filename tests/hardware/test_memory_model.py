"""The size-dependent SRAM model: the published points, growth with size, a hand-computed
report, and one-line errors for bad access-count files."""

from __future__ import annotations

import json

import pytest

from hardware.memory_model import (
    KIB_BITS,
    MEMORY_NAMES,
    AccessEnergyModel,
    Memories,
    SramArea,
    SramLeakage,
    SramModel,
    check_shapes,
    read_access_counts,
)
from hardware.power import PowerParams
from spikebench.errors import ParamsError, SpikebenchError
from spikebench.params import load_section, parse_dataclass

HOROWITZ = {8 * KIB_BITS: 10.0, 32 * KIB_BITS: 20.0, 1024 * KIB_BITS: 100.0}  # 45 nm, pJ per 64-bit read
E64_REF_PJ, EXPONENT = 19.5618, 0.47260                                     # the fit, as the README states it


def model(write_to_read: float = 1.0) -> SramModel:
    return SramModel(AccessEnergyModel.fit(), write_to_read, SramLeakage(40.0, 5.0, 100.0), SramArea(5.59, 0.6))


def by_hand_read_pj(width: int, depth: int) -> float:
    """The README formula at 180 nm: W/64 · 19.56 pJ · (C / 32 KiB)^0.4726 · 16."""
    return width / 64 * E64_REF_PJ * (width * depth / (32 * KIB_BITS)) ** EXPONENT * 16


def test_fit_reproduces_the_three_horowitz_points():
    fit = AccessEnergyModel.fit()
    for capacity, pj in HOROWITZ.items():
        at_45nm = fit.read_pj(capacity, 64) / 16
        print(f"{capacity // KIB_BITS} KiB: fit {at_45nm:.2f} pJ vs published {pj} pJ")
        assert at_45nm == pytest.approx(pj, rel=0.03)
    assert fit.exponent == pytest.approx(EXPONENT, abs=1e-4)
    assert fit.ref_pj_per_bit_45nm * 64 == pytest.approx(E64_REF_PJ, rel=1e-4)
    assert "19.56 pJ" in fit.formula() and "0.4726" in fit.formula()


def test_energy_grows_with_capacity_and_width_and_scales_x16_from_45nm():
    m = model()
    depths = [2**a for a in range(3, 20)]
    for width in (8, 32, 496):
        energies = [m.read_pj(width, d) for d in depths]
        assert all(b > a for a, b in zip(energies, energies[1:], strict=False))
    widths = [1, 8, 32, 64, 172, 512]
    assert all(m.read_pj(b, 4096) > m.read_pj(a, 4096) for a, b in zip(widths, widths[1:], strict=False))
    assert m.access.node_scale == pytest.approx(16.0)
    assert model(write_to_read=1.5).write_pj(32, 4096) == pytest.approx(1.5 * m.read_pj(32, 4096))
    fit = m.access
    assert fit.extrapolated(172 * 8) and fit.extrapolated(496 * 2**15) and not fit.extrapolated(32 * 4096)


def counts_file(path, **overrides) -> dict:
    """A hand-made reports/hardware_memory.json: 2 images, every memory of the core."""
    memories = {name: {"instances": 1, "width_bits": 16, "depth_words": 16, "reads": 0, "writes": 0} for name in MEMORY_NAMES}
    memories["vmem"] = {"instances": 4, "width_bits": 64, "depth_words": 4096, "reads": 1000, "writes": 600}  # 32 KiB each
    memories["wmem"] = {"instances": 1, "width_bits": 128, "depth_words": 65536, "reads": 200, "writes": 0}   # 1 MiB
    raw = {"images": 2, "memories": memories,
           "per_image": {n: {"reads": [m["reads"] * 0.25, m["reads"] * 0.75], "writes": [m["writes"] / 2] * 2}
                         for n, m in memories.items()}}
    raw.update(overrides)
    path.write_text(json.dumps(raw))
    return raw


def test_hand_made_counts_give_the_hand_computed_energy_leakage_and_area(tmp_path):
    counts_file(tmp_path / "hardware_memory.json")
    memories = Memories.of(read_access_counts(tmp_path / "hardware_memory.json"), model())
    vmem_access = by_hand_read_pj(64, 4096)          # = 19.56 x 16 = 313 pJ at the reference size
    wmem_access = by_hand_read_pj(128, 65536)        # 1 MiB: 2 x (100 pJ x 16 within the fit's 0.6%)
    assert vmem_access == pytest.approx(313.0, rel=1e-3) and wmem_access == pytest.approx(2 * 1600, rel=0.01)
    per_image_pj = (1000 + 600) / 2 * vmem_access + 200 / 2 * wmem_access
    assert memories.dynamic_j == pytest.approx(per_image_pj * 1e-12, rel=1e-4)
    per_image = memories.per_image_dynamic_j()
    assert per_image.sum() / 2 == pytest.approx(memories.dynamic_j) and per_image[1] > per_image[0]
    bits = 6 * 16 * 16 + 4 * 64 * 4096 + 128 * 65536
    assert memories.bits == bits
    assert memories.leakage_w() == pytest.approx(bits * 40e-12) and memories.leakage_w("high") == pytest.approx(bits * 100e-12)
    assert memories.area_mm2 == pytest.approx(bits * 5.59 / 0.6 * 1e-6)
    table = memories.table(latency_s=1e-3)
    assert table["vmem"]["read_pj"] == pytest.approx(vmem_access, rel=1e-4) and table["vmem"]["reads_per_image"] == 500
    assert table["vmem"]["leakage_j"] == pytest.approx(4 * 64 * 4096 * 40e-12 * 1e-3)
    assert table["vmem"]["flat_8kb_comparison_j"] == pytest.approx(800 * 64 * 2.5e-12)   # the former flat 2.5 pJ/bit
    assert table["desc"]["extrapolated"] and not table["vmem"]["extrapolated"]


def test_missing_file_is_one_clear_error(tmp_path):
    with pytest.raises(SpikebenchError, match=r"hardware_memory.json: missing; run the rtl_sim stage.*\(dvc repro rtl_sim\)"):
        read_access_counts(tmp_path / "hardware_memory.json")


@pytest.mark.parametrize(("change", "message"), [
    (lambda raw: raw["memories"]["vmem"].update(reads=-3), r"memories.vmem.reads is -3, must be >= 0 .*dvc repro rtl_sim"),
    (lambda raw: raw["memories"].pop("i0"), r"memory 'i0' missing \(expected desc, inq.*\); re-run the rtl_sim stage"),
    (lambda raw: raw["memories"].update(sram2={}), r"unknown memory 'sram2'.*MEMORY_NAMES"),
    (lambda raw: raw["memories"]["q"].update(width_bits="26"), r"memories.q.width_bits must be a number, got '26'"),
    (lambda raw: raw.update(images=0), r"images is 0, must be > 0"),
    (lambda raw: raw["per_image"]["ptr"].update(reads=[1]), r"per_image.ptr.reads must be a list of 2 counts"),
    (lambda raw: raw["per_image"]["ptr"].update(writes=[1, -1]), r"per_image.ptr.writes\[1\] is -1"),
])
def test_bad_counts_are_one_line_errors_naming_the_file(tmp_path, change, message):
    path = tmp_path / "hardware_memory.json"
    raw = counts_file(path)
    change(raw)
    path.write_text(json.dumps(raw))
    with pytest.raises(SpikebenchError, match=message) as err:
        read_access_counts(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_counts_must_match_the_netlists_memories(tmp_path):
    counts_file(tmp_path / "hardware_memory.json")
    counts = read_access_counts(tmp_path / "hardware_memory.json")
    netlist = {f"gen_lane[{i}].u_vmem": {"width": 64, "addr_bits": 12} for i in range(4)}
    netlist |= {"u_wmem": {"width": 128, "addr_bits": 16}}
    netlist |= {f"u_{n}": {"width": 16, "addr_bits": 4} for n in MEMORY_NAMES if n not in ("vmem", "wmem")}
    check_shapes(counts, netlist, "synth.json")
    netlist["u_wmem"] = {"width": 128, "addr_bits": 15}
    with pytest.raises(SpikebenchError, match=r"wmem is 1 x 128 bits x 65536 words but the netlist \(synth.json\) has \[\(128, 32768\)\]"):
        check_shapes(counts, netlist, "synth.json")
    netlist["u_wmem"] = {"width": 128, "addr_bits": 16}
    netlist["u_extra"] = {"width": 8, "addr_bits": 2}
    with pytest.raises(SpikebenchError, match=r"netlist memory u_extra has no access counts"):
        check_shapes(counts, netlist, "synth.json")


def test_power_params_come_from_params_yaml_and_the_leakage_range_is_checked():
    _, params = load_section(PowerParams, "power")
    low, high = params.sram_leakage_range_pw_per_bit
    assert low <= params.sram_leakage_pw_per_bit <= high
    assert params.sram_model().area.um2_per_bit == pytest.approx(params.sram_cell_um2 / params.sram_array_efficiency)
    raw = {"tolerance": 0.01, "wire_load_factor": 1.0, "sram_write_to_read": 1.0, "sram_leakage_pw_per_bit": 40.0,
           "sram_leakage_range_pw_per_bit": [50.0, 100.0], "sram_cell_um2": 5.59, "sram_array_efficiency": 0.6}
    with pytest.raises(ParamsError, match=r"power.sram_leakage_range_pw_per_bit must be \[low, high\] around"):
        parse_dataclass(PowerParams, raw, "power")
    with pytest.raises(ParamsError, match=r"unknown key power.sram_pj_per_bit"):
        parse_dataclass(PowerParams, {**raw, "sram_leakage_range_pw_per_bit": [5.0, 100.0], "sram_pj_per_bit": 2.5}, "power")


def test_phase_split_prices_each_phases_accesses_and_adds_up(tmp_path):
    zero = {n: {"reads": 0, "writes": 0} for n in MEMORY_NAMES}
    per_phase = {"events": {**zero, "vmem": {"reads": 900, "writes": 500}, "wmem": {"reads": 200, "writes": 0}},
                 "clear": {**zero, "vmem": {"reads": 0, "writes": 100}},
                 "fire": {**zero, "vmem": {"reads": 100, "writes": 0}}}
    counts_file(tmp_path / "hardware_memory.json", per_phase=per_phase)
    memories = Memories.of(read_access_counts(tmp_path / "hardware_memory.json"), model())
    phases = memories.phase_dynamic_j()
    assert sum(phases.values()) == pytest.approx(memories.dynamic_j)       # the split covers every access
    assert phases["clear"] == pytest.approx(100 / 2 * by_hand_read_pj(64, 4096) * 1e-12, rel=1e-4)
    assert phases["events"] > phases["fire"] > 0


def test_without_a_phase_split_there_is_none(tmp_path):
    counts_file(tmp_path / "hardware_memory.json")
    assert Memories.of(read_access_counts(tmp_path / "hardware_memory.json"), model()).phase_dynamic_j() is None
