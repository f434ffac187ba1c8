"""The Verilator simulator of the RTL: bit-exact with the golden model, its phase cycles add
up to the core's cycle counter, and its memory access counters equal a hand count."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hardware.driver import PHASES
from hardware.export import quantise, write_memory_images
from hardware.golden import compare, run_golden
from hardware.memory_counts import memory_geometry, memory_report
from hardware.synthesis.flow import ToolError
from hardware.verilator import batch_chunks, build_verilator, simulate_images
from tests.hardware.random_nets import TEST_CONFIG, random_checkpoint, random_images


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A random conv/fc network, its memory images and 12 images of varied density, simulated."""
    rng = np.random.default_rng(11)
    state, meta = random_checkpoint(rng, timesteps=3)
    net = quantise(state, meta, TEST_CONFIG)
    memdir = tmp_path_factory.mktemp("mem")
    layout = write_memory_images(net, memdir)
    images = random_images(rng, tuple(net.input_shape), 12)
    runs, _ = simulate_images(build_verilator(TEST_CONFIG), memdir, layout, images, workers=2, chunk_images=5)
    return net, layout, images, runs


@pytest.mark.slow  # builds and runs Verilator
def test_verilator_matches_golden_and_phases_add_up(tiny):
    net, layout, images, runs = tiny
    golden = run_golden(net, images)
    assert compare(runs, golden) == []
    assert any(any(p != 0 for p in r.potentials) for r in runs)  # not an all-zero comparison
    for run in runs:
        assert set(run.phase_cycles) == set(PHASES)
        assert sum(run.phase_cycles.values()) == run.cycles
        assert sum(run.layer_cycles) == run.phase_cycles["events"] + run.phase_cycles["fire"]
        for kind, counts in run.memory.items():  # the per-phase buckets add up to the image's counts
            assert tuple(map(sum, zip(*(b[kind] for b in run.phase_memory.values()), strict=True))) == counts
        assert run.phase_memory["host"]["inq"][1] == run.memory["inq"][1] > 0   # the host writes the input queue ...
        assert run.phase_memory["analog"]["inq"][0] == run.memory["inq"][0]      # ... the analog phase reads it
        assert run.phase_memory["clear"]["vmem"][1] == TEST_CONFIG.lanes * layout["vwords"]
        assert run.phase_memory["fire"]["q"][1] == run.memory["q"][1]            # spikes are queued by the fire phase


@pytest.mark.slow  # builds and runs Verilator
def test_memory_counters_equal_a_hand_count(tiny):
    """What each memory must see, counted from the network and the golden model's spikes."""
    net, layout, images, runs = tiny
    golden = run_golden(net, images)
    p, t, layers = TEST_CONFIG.lanes, net.timesteps, len(net.layers)
    fire_words = sum(entry["fire_n"] for entry in layout["layers"])  # bank words fired per step (all lanes at once)
    for i, run in enumerate(runs):
        pixels = int(np.count_nonzero(images[i]))
        spikes = int(golden.spikes[i].sum())
        sops, macs = int(golden.sops[i]), int(golden.macs[i])
        m = run.memory
        assert m["inq"] == (pixels, pixels)                           # host writes each pixel event, the core reads it once
        assert m["desc"] == (t * layers, 0)                           # every layer of every step (the analog pass is step 0 of layer 0)
        assert m["ptr"] == (pixels + spikes, 0)                       # one pointer per decoded event
        assert m["q"] == (spikes, spikes)                             # each spike queued once, consumed once
        assert m["bias"] == (t * fire_words, 0)                       # one bias row per fired bank word
        clear = p * layout["vwords"]
        outputs = len(layout["outputs"])
        # read-modify-write per SOP, the fire phase reads and writes every lane, and each host
        # read-back of an output enables all P banks (only the addressed one is used)
        assert m["vmem"] == (sops + p * t * fire_words + p * outputs, clear + sops + p * t * fire_words)
        layer0_words = layout["layers"][0]["fire_n"]                  # layer 0 adds I0 when it fires, every step
        assert m["i0"] == (macs + p * t * layer0_words, clear + macs)  # cleared, then one read-modify-write per analog MAC
        assert m["wmem"][0] >= (sops + macs) / p and m["wmem"][1] == 0


@pytest.mark.slow  # builds and runs Verilator
def test_memory_report_sums_every_image_with_the_rtl_geometry(tiny):
    _, _, _, runs = tiny
    report = json.loads(json.dumps(memory_report(runs, TEST_CONFIG)))
    geometry = memory_geometry(TEST_CONFIG)
    assert report["images"] == len(runs)
    for kind, entry in report["memories"].items():
        assert entry["reads"] == sum(r.memory[kind][0] for r in runs)
        assert entry["width_bits"] == geometry[kind].width_bits and entry["instances"] == geometry[kind].instances
    assert report["memories"]["vmem"]["instances"] == TEST_CONFIG.lanes
    for kind, entry in report["memories"].items():
        assert sum(phase[kind]["reads"] for phase in report["per_phase"].values()) == entry["reads"]


def test_batch_chunks_respect_the_image_limit_and_keep_the_order():
    images = np.ones((7, 1, 2, 2), dtype=np.uint8)
    chunks = batch_chunks(images, 3)
    assert [len(c) for c in chunks] == [3, 3, 1]
    assert np.concatenate(chunks).tolist() == list(range(7))


def test_missing_verilator_names_the_apt_package(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolError, match=r"apt-get install verilator"):
        build_verilator(TEST_CONFIG)
