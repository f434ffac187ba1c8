"""End to end: the real `dvc repro` on the smoke profile in a copy of the repository.

Asserts that every stage ran (one FINISHED MLflow run each, in a temporary store),
that the leaderboard lists every method the pipeline produced, and that a second
`dvc repro` does nothing.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from spikebench.results import rows_frame
from spikebench.tracking import EXPERIMENT, ui_server

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def test_every_stage_logged_one_finished_run(smoke_run):
    import mlflow

    work, store, _ = smoke_run
    stages = set(yaml.safe_load((work / "dvc.yaml").read_text())["stages"])
    mlflow.set_tracking_uri(store)
    runs = mlflow.search_runs(experiment_names=[EXPERIMENT])
    if "tags.mlflow.parentRunId" in runs:  # nested runs (sweep steps) belong to their stage's run
        runs = runs[runs["tags.mlflow.parentRunId"].isna()]
    seed_runs = runs[runs["tags.parent_stage"] == "seeds"]  # the trained stages again, for seed 1 (stage `seeds`)
    runs = runs[runs["tags.parent_stage"] != "seeds"]
    assert sorted(runs["tags.dvc_stage"]) == sorted(stages)
    assert sorted(seed_runs["tags.dvc_stage"]) == ["baseline"]
    assert set(runs.status) == {"FINISHED"}
    # publish spans datasets; synth maps the core, which does not depend on any dataset
    data_stages = runs[~runs["tags.dvc_stage"].isin(["publish", "synth", "seeds"])]
    assert set(data_stages["tags.dataset"]) == {"digits"}


def test_leaderboard_lists_every_method_on_digits(smoke_run):
    work, _, _ = smoke_run
    result_files = yaml.safe_load((work / "params.yaml").read_text())["leaderboard"]["results"]
    frame = rows_frame([work / f for f in result_files])
    assert set(frame.dataset) == {"digits"}
    text = (work / "leaderboard" / "LEADERBOARD.md").read_text()
    table = text.split("## digits")[1].split("\n## ")[0]
    listed = {line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| ") and "---" not in line}
    shown = set(frame.method[frame.headline.astype(bool)])
    assert "ann" in listed and shown <= listed
    ann = frame[frame.method == "ann"].iloc[0]
    assert ann.accuracy > 0.8 and ann.macs_per_image > 0 and ann.energy_per_image_j > 0
    assert (work / "leaderboard" / "plots" / "accuracy_vs_energy.png").exists()


def test_seeds_are_trained_again_and_pooled_in_the_leaderboard(smoke_run):
    work, _, _ = smoke_run
    main = rows_frame([work / "results" / "baseline.json"])
    seeds = rows_frame([work / "results" / "seeds.json"])
    assert set(main.seed) == {0} and set(seeds.seed) == {1}
    assert set(seeds.method) == {"ann"}
    seed1_ann = work / "build" / "seeds" / "seed1" / "models" / "ann.pt"
    assert seed1_ann.read_bytes() != (work / "models" / "ann.pt").read_bytes()  # another seed trains other weights
    ann_seed1 = seeds[seeds.method == "ann"].iloc[0]
    assert (work / ann_seed1.predictions_file).exists() and ann_seed1.split_hash == main.split_hash.iloc[0]  # the same split
    text = (work / "leaderboard" / "LEADERBOARD.md").read_text()
    table = text.split("## digits")[1].split("### digits: detail")[0]
    assert "(2 seeds)" in next(line for line in table.splitlines() if line.startswith("| ann"))
    assert "1 (seed 0)" in next(line for line in table.splitlines() if line.startswith("| stdp"))  # not run per seed here


def test_second_repro_is_a_no_op(smoke_run):
    _, _, second = smoke_run
    assert second.returncode == 0
    assert "Running stage" not in second.stdout
    assert "up to date" in second.stdout


def test_mlflow_ui_lists_every_stage_in_a_real_browser(smoke_run, tmp_path):
    """Headless Chromium renders the experiment's runs page; every stage's run is listed."""
    import socket

    import mlflow

    _, store, _ = smoke_run
    mlflow.set_tracking_uri(store)
    experiment_id = mlflow.get_experiment_by_name(EXPERIMENT).experiment_id
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with ui_server(store, port) as url:
        page = f"{url}/#/experiments/{experiment_id}/runs"
        dom = chromium(tmp_path, "--dump-dom", page)
        chromium(tmp_path, f"--screenshot={tmp_path / 'mlflow_ui.png'}", page)
    stages = set(yaml.safe_load((smoke_run[0] / "dvc.yaml").read_text())["stages"])
    assert all(f">{stage}<" in dom for stage in stages), sorted(s for s in stages if f">{s}<" not in dom)
    assert (tmp_path / "mlflow_ui.png").stat().st_size > 10_000


def chromium(profile_dir: Path, *args: str) -> str:
    """Run Debian's Chromium headless (flags that keep it off the closed network)."""
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={profile_dir / 'chromium'}",
             "--virtual-time-budget=30000", "--window-size=1400,800"]
    result = subprocess.run(["chromium", *flags, *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


# stages that measure no model on the test split (they write no result rows): no headline metrics
MODEL_FREE_STAGES = {"prepare", "synth", "gate_sim", "nir", "seeds", "publish"}
MODEL_STAGES = {"baseline", "conversion", "rmp", "st_pruning", "attention_pruning"}


def test_mlflow_runs_compare_across_methods_and_the_selected_model_is_registered(smoke_run):
    """Every parent run has the shared headline metrics and tags; child runs carry their sweep settings
    as params; models are logged; the registered selected model predicts the engine's classes."""
    import mlflow

    from spikebench.data import load_prepared
    from spikebench.spiking import load_snn, simulate
    from spikebench.tracking import EXPERIMENT_KIND, REGISTERED_ALIAS, REGISTERED_MODEL

    work, store, _ = smoke_run
    mlflow.set_tracking_uri(store)
    experiment = mlflow.get_experiment_by_name(EXPERIMENT)
    assert experiment.tags["mlflow.experimentKind"] == EXPERIMENT_KIND
    runs = mlflow.search_runs(experiment_names=[EXPERIMENT])
    runs = runs[runs["tags.parent_stage"] != "seeds"]  # one run per stage: the extra seeds' runs are checked above
    parents, children = runs[runs["tags.mlflow.parentRunId"].isna()], runs[runs["tags.mlflow.parentRunId"].notna()]
    for column in ("tags.method", "tags.library", "tags.dataset", "tags.split_hash", "tags.dvc_stage"):
        assert parents[column].notna().all() and children[column].notna().all(), column
    measured = parents[~parents["tags.dvc_stage"].isin(MODEL_FREE_STAGES)].set_index("tags.dvc_stage")
    for metric in ("test_accuracy", "timesteps", "sops_per_image", "energy_per_image_uj"):
        assert measured[f"metrics.{metric}"].notna().all(), (metric, measured[f"metrics.{metric}"])
    assert not [c for c in runs.columns if c.startswith("metrics.") and c.endswith("_j")]  # energies in µJ
    assert measured.loc["power", "metrics.hw_energy_per_image_uj"] > 0
    exported = [r for r in rows_frame([work / "results/st_pruning.json"]).itertuples() if r.model_path]
    assert measured.loc["st_pruning", "metrics.test_accuracy"] == pytest.approx(exported[0].accuracy)  # the 5-bit model
    # sweep settings are params, and the child runs are found by the same tag filters as their stage
    params = [c for c in runs.columns if c.startswith("params.")]
    assert children[params].notna().any(axis=1).all()
    conversion = children[children["tags.dvc_stage"] == "conversion"]
    assert conversion["params.reset"].notna().all() and conversion["params.percentile"].notna().all()
    assert (conversion["tags.method"] == "conversion").all() and (conversion["tags.dataset"] == "digits").all()
    assert children.loc[children["tags.dvc_stage"] == "st_pruning", "params.bits"].notna().any()
    # the split as dataset input, the models as MLflow models
    baseline_run = mlflow.get_run(measured.loc["baseline", "run_id"])
    (split,) = baseline_run.inputs.dataset_inputs
    assert (split.dataset.name, split.dataset.digest) == ("digits", measured.loc["baseline", "tags.split_hash"])
    models = mlflow.search_logged_models(experiment_ids=[experiment.experiment_id], output_format="list")
    stage_runs = set(parents.run_id)  # the seed runs log their models too; they are not the stages' own runs
    with_model = set(parents.set_index("run_id").loc[[m.source_run_id for m in models if m.source_run_id in stage_runs], "tags.dvc_stage"])
    assert MODEL_STAGES | {"nir"} <= with_model
    # the registered selected model: loads and predicts the engine's classes
    selected = json.loads((work / "hardware" / "selected.json").read_text())
    net, meta = load_snn(work / selected["model_path"])
    assert int(meta["timesteps"]) == int(selected["timesteps"])
    x = load_prepared(work / "data" / "prepared").test[0][:64]
    model = mlflow.pyfunc.load_model(f"models:/{REGISTERED_MODEL}@{REGISTERED_ALIAS}")
    assert (model.predict(x.numpy()) == simulate(net, x, int(meta["timesteps"])).predictions().numpy()).all()
