"""spikebench.paths and dvc.yaml name the same artefacts."""

from __future__ import annotations

from pathlib import Path

import yaml

from spikebench import paths

ROOT = Path(__file__).resolve().parents[1]


def _names(entries: list) -> set[str]:
    return {next(iter(e)) if isinstance(e, dict) else e for e in entries}


def test_every_dvc_output_is_a_path_of_the_paths_module():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    declared = set()
    for stage in stages.values():
        declared |= _names(stage.get("outs", [])) | _names(stage.get("metrics", [])) | _names(stage.get("plots", []))
    known = {str(v) for k, v in vars(paths).items() if k.isupper() and isinstance(v, Path)}
    # per-stage files under the two directories the paths module names
    per_stage = {d for d in declared if Path(d).parent in (paths.RUNS_DIR, paths.METRICS_DIR, paths.PREDICTIONS_DIR)}
    assert {str(Path(d).parent) for d in per_stage} <= known
    assert declared - per_stage - known == set(), "add these dvc.yaml outputs to spikebench/paths.py"
    artefacts = {v for v in known if not v.endswith(".yaml")} - {str(paths.RUNS_DIR), str(paths.METRICS_DIR), str(paths.PREDICTIONS_DIR)}
    deps = set().union(*(_names(s.get("deps", [])) for s in stages.values()))
    pending = {str(paths.ANN_HW_MODEL_DIR), str(paths.ANN_HW_RESULTS), str(paths.ANN_HW_REPORT)}  # hardware.ann_rtl, issue #18
    assert artefacts - declared - deps - pending == set(), "paths.py names artefacts no stage writes or reads"


def test_every_stage_records_its_run_and_every_results_file_has_its_metrics():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        outs = _names(stage.get("outs", []))
        assert f"{paths.RUNS_DIR}/{name}.json" in outs, name
        for results in (o for o in outs if o.startswith("results/")):
            assert f"{paths.METRICS_DIR}/{Path(results).name}" in _names(stage.get("metrics", [])), name
            assert f"{paths.PREDICTIONS_DIR}/{Path(results).stem}" in outs, f"{name}: declare its predictions folder"
