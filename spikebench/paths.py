"""Every pipeline artefact's path, written once.

Stages read and write artefacts only through these names, so a stage never imports
another stage to learn where its outputs are; `dvc.yaml` lists the same paths as deps
and outs (tests/test_paths.py checks that the two agree). Paths are relative to the
repository root, where DVC runs every stage.
"""

from __future__ import annotations

from pathlib import Path

PARAMS = Path("params.yaml")
PREDICTIONS_DIR = Path("reports/predictions")  # <name>/<row>.npz: each result row's class per test image (results/<name>.json)
RUNS_DIR = Path("reports/runs")    # reports/runs/<stage>.json: the MLflow run that produced a stage's outputs
METRICS_DIR = Path("metrics")      # metrics/<results name>.json: headline numbers (DVC metrics), written with the rows

# data and the ANN baseline
PREPARED_DIR = Path("data/prepared")
ANN_MODEL = Path("models/ann.pt")
BASELINE_RESULTS = Path("results/baseline.json")
BASELINE_CURVE = Path("reports/baseline_training.png")
BASELINE_CURVE_DATA = Path("reports/baseline_training.csv")

# SNN methods
CONVERSION_MODEL = Path("models/conversion_snn.pt")
CONVERSION_RESULTS = Path("results/conversion.json")
CONVERSION_PLOT = Path("reports/conversion_accuracy_vs_T.png")

RMP_MODEL = Path("models/rmp_snn.pt")
RMP_RESULTS = Path("results/rmp.json")
RMP_LATENCY = Path("reports/rmp_latency.json")
RMP_PLOT = Path("reports/rmp_accuracy_vs_T.png")

PARITY_RESULTS = Path("results/parity.json")
PARITY_REPORT = Path("reports/parity.json")

STDP_RESULTS = Path("results/stdp.json")
STDP_CONVERGENCE_PLOT = Path("reports/stdp_convergence.png")
STDP_KERNELS_PLOT = Path("reports/stdp_conv1_kernels.png")
STDP_ACCURACY_PLOT = Path("reports/stdp_accuracy.png")

ST_PRUNING_MODEL = Path("models/st_pruning_snn.pt")
ST_PRUNING_RESULTS = Path("results/st_pruning.json")
ST_PRUNING_CHANNELS_PLOT = Path("reports/st_pruning_channels.png")
ST_PRUNING_TIMESTEPS_PLOT = Path("reports/st_pruning_accuracy_vs_timesteps.png")
ST_PRUNING_BITS_PLOT = Path("reports/st_pruning_accuracy_vs_bits.png")

ATTENTION_MODEL = Path("models/attention_pruning_snn.pt")
ATTENTION_RESULTS = Path("results/attention_pruning.json")
ATTENTION_ACCURACY_PLOT = Path("reports/attention_pruning_accuracy_vs_T.png")
ATTENTION_NEURONS_PLOT = Path("reports/attention_pruning_neurons.png")

# hardware
SELECTED = Path("hardware/selected.json")
NIR_MODEL = Path("models/selected.nir")
NIR_REPORT = Path("reports/nir.json")
HW_MODEL_DIR = Path("hardware/model")
RTL_RESULTS = Path("results/hardware_rtl.json")
RTL_REPORT = Path("reports/hardware_rtl_images.json")
MEMORY_REPORT = Path("reports/hardware_memory.json")  # exact memory accesses over every simulated image
NETLIST_DIR = Path("hardware/netlist")
SYNTH_REPORT = Path("reports/hardware_synth.json")
GATE_DIR = Path("hardware/gate")
GATE_REPORT = Path("reports/hardware_gate.json")
OPENSTA_DIR = Path("hardware/opensta")  # OpenSTA's power netlist, activity annotation, script and log
POWER_REPORT = Path("reports/hardware_power.json")
HARDWARE_RESULTS = Path("results/hardware.json")
ANN_HW_MODEL_DIR = Path("hardware/ann_model")  # the ANN array's memory images, one folder per model (stage ann_rtl)
ANN_HW_RESULTS = Path("results/hardware_ann.json")
ANN_HW_REPORT = Path("reports/hardware_ann.json")

# the published page
SEEDS_RESULTS = Path("results/seeds.json")      # the trained stages' rows for every extra seed (stage seeds)

LEADERBOARD_MD = Path("leaderboard/LEADERBOARD.md")
LEADERBOARD_CSV = Path("leaderboard/leaderboard.csv")
LEADERBOARD_PLOTS = Path("leaderboard/plots")  # PNGs, and their data as CSV for `dvc plots`
PRIOR_ART = Path("leaderboard/prior_art.yaml")
