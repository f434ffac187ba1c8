"""Stage `select`: pick the SNN to put in silicon from the methods' result rows.

Candidates are rows with `extra.mappable` and `extra.model_path` (contract checkpoints of
IF networks with conv/linear/avg-pool layers). Rule `min_energy` (default): the lowest
energy per image among candidates whose accuracy is within `margin` of the ANN's;
`max_accuracy`: the most accurate candidate. Writes hardware/selected.json naming the
model, the row it came from and why.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from spikebench.data import check_split_hash
from spikebench.errors import ModelError, cli_main
from spikebench.io import atomic_write_json
from spikebench.params import constraint, load_section
from spikebench.results import ResultRow, read_rows
from spikebench.tracking import stage_run

SELECTED_PATH = "hardware/selected.json"
RULES = ("min_energy", "max_accuracy")


@dataclass(frozen=True)
class SelectParams:
    results: list[str] = constraint(nonempty=True)
    rule: str = constraint(choices=RULES)
    margin: float = constraint(min=0.0, max=1.0)  # accuracy below the ANN's, as a fraction (0.02 = 2 pp)


def ann_accuracy(rows: list[ResultRow], dataset: str) -> float:
    """The ANN accuracy the candidates are measured against (ANN rows first, else the rows' own)."""
    ann = [r.accuracy for r in rows if r.method == "ann" and r.dataset == dataset]
    if ann:
        return max(ann)
    own = [r.ann_accuracy for r in rows if r.dataset == dataset and r.ann_accuracy is not None]
    if not own:
        raise ModelError(f"select: no ANN accuracy for dataset {dataset} in the result files; list results/baseline.json in select.results")
    return max(own)


def choose(rows: list[ResultRow], rule: str, margin: float) -> tuple[ResultRow, dict]:
    """The selected row and a JSON-able account of the choice."""
    candidates = [r for r in rows if r.method != "ann" and r.extra.get("mappable") and r.extra.get("model_path")]
    if not candidates:
        raise ModelError("select: no hardware-mappable SNN rows (extra.mappable and extra.model_path) in select.results; "
                         "run a conversion method first")
    dataset = candidates[0].dataset
    if any(r.dataset != dataset for r in candidates):
        raise ModelError("select: candidate rows come from different datasets; re-run the pipeline on one profile")
    reference = ann_accuracy(rows, dataset)
    eligible = [r for r in candidates if r.accuracy >= reference - margin]
    if rule == "max_accuracy":
        eligible = candidates
    if not eligible:
        best = max(candidates, key=lambda r: r.accuracy)
        raise ModelError(f"select: no mappable SNN within select.margin={margin} of the ANN's {reference:.4f} "
                         f"(best {best.method} T={best.timesteps}: {best.accuracy:.4f}); raise select.margin")
    if rule == "min_energy":
        chosen = min(eligible, key=lambda r: (r.energy_per_image_j, -r.accuracy, r.timesteps))
        why = (f"lowest energy per image ({chosen.energy_per_image_j * 1e6:.3f} uJ, 45 nm op model) among {len(eligible)} mappable "
               f"SNN rows within {margin * 100:.1f} pp of the ANN ({reference * 100:.2f}%)")
    else:
        chosen = max(eligible, key=lambda r: (r.accuracy, -r.energy_per_image_j))
        why = f"highest accuracy among {len(eligible)} mappable SNN rows"
    account = {
        "model_path": chosen.extra["model_path"],
        "method": chosen.method,
        "library": chosen.library,
        "arch": chosen.arch,
        "dataset": chosen.dataset,
        "split_hash": chosen.split_hash,
        "timesteps": chosen.timesteps,
        "accuracy": chosen.accuracy,
        "ann_accuracy": reference,
        "energy_per_image_j": chosen.energy_per_image_j,
        "synops_per_image": chosen.synops_per_image,
        "row_extra": chosen.extra,
        "mlflow_run_id": chosen.mlflow_run_id,
        "rule": rule,
        "margin": margin,
        "reason": why,
        "candidates": [
            {"method": r.method, "library": r.library, "timesteps": r.timesteps, "accuracy": r.accuracy,
             "energy_per_image_j": r.energy_per_image_j, "model_path": r.extra["model_path"], "eligible": r in eligible}
            for r in candidates
        ],
    }
    return chosen, account


def load_selected(split_hash: str, path: str | Path = SELECTED_PATH) -> dict:
    """The select stage's choice, checked to be trained on the prepared split `split_hash`."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: missing; run the select stage (dvc repro select)")
    try:
        selected = json.loads(path.read_text())
        model_path, model_split = selected["model_path"], selected["split_hash"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ModelError(f"{path}: unreadable ({error}); re-run the select stage (dvc repro select)") from None
    check_split_hash(split_hash, model_split, f"{model_path} (selected)")
    return selected


@cli_main
def main() -> None:
    _, params = load_section(SelectParams, "select")
    rows = [row for path in params.results for row in read_rows(path)]
    chosen, account = choose(rows, params.rule, params.margin)
    with stage_run("select", method="hardware", library="rtl", dataset=chosen.dataset, split_hash=chosen.split_hash,
                   params=dataclasses.asdict(params)) as run:
        atomic_write_json(SELECTED_PATH, account)
        run.log_metrics({"candidates": len(account["candidates"]), "selected_accuracy": chosen.accuracy,
                         "selected_energy_uj": chosen.energy_per_image_j * 1e6})
        run.set_tags({"selected_model": account["model_path"], "selected_method": chosen.method})
        run.log_artifact(SELECTED_PATH)
    print(f"select: {chosen.method} T={chosen.timesteps} ({account['model_path']}): {account['reason']}")


if __name__ == "__main__":
    main()
