"""Which SNN goes into silicon: the selection rule and the reader of its outcome.

Candidates are rows with `mappable` and `model_path` (contract checkpoints of IF networks
with conv/linear/avg-pool layers). Rule `min_energy`: the lowest energy per image (45 nm
op model) among candidates whose accuracy is within `margin` of the ANN's;
`max_accuracy`: the most accurate candidate. `choose` is the rule (stage `select`
writes its account to hardware/selected.json); `load_selected` is how the hardware
stages read that file back.
"""

from __future__ import annotations

import json
from pathlib import Path

from spikebench import paths
from spikebench.data import check_split_hash
from spikebench.errors import ModelError
from spikebench.results import ResultRow

RULES = ("min_energy", "max_accuracy")


def ann_accuracy(rows: list[ResultRow], dataset: str) -> float:
    """The ANN accuracy the candidates are measured against (ANN rows first, else the rows' own)."""
    ann = [r.accuracy for r in rows if r.method == "ann" and r.dataset == dataset]
    if ann:
        return max(ann)
    own = [r.ann_accuracy for r in rows if r.dataset == dataset and r.ann_accuracy is not None]
    if not own:
        raise ModelError(f"select: no ANN accuracy for dataset {dataset} in the result files; list results/baseline.json in select.results")
    return max(own)


def candidates_of(rows: list[ResultRow]) -> list[ResultRow]:
    """The mappable SNN rows (one dataset), or a one-line error."""
    candidates = [r for r in rows if r.method != "ann" and r.mappable and r.model_path]
    if not candidates:
        raise ModelError("select: no hardware-mappable SNN rows (mappable and model_path) in select.results; "
                         "run a conversion method first")
    if any(r.dataset != candidates[0].dataset for r in candidates):
        raise ModelError("select: candidate rows come from different datasets; re-run the pipeline on one profile")
    return candidates


def pick(eligible: list[ResultRow], rule: str, margin: float, reference: float) -> tuple[ResultRow, str]:
    """The chosen row of `eligible` under `rule`, and why."""
    if rule == "min_energy":
        chosen = min(eligible, key=lambda r: (r.energy_per_image_j, -r.accuracy, r.timesteps))
        why = (f"lowest energy per image ({chosen.energy_per_image_j * 1e6:.3f} uJ, 45 nm op model) among {len(eligible)} mappable "
               f"SNN rows within {margin * 100:.1f} pp of the ANN ({reference * 100:.2f}%)")
    else:
        chosen = max(eligible, key=lambda r: (r.accuracy, -r.energy_per_image_j))
        why = f"highest accuracy among {len(eligible)} mappable SNN rows"
    return chosen, why


def account_of(chosen: ResultRow, why: str, rule: str, margin: float, reference: float,
               candidates: list[ResultRow], eligible: list[ResultRow]) -> dict:
    """The JSON-able account of the choice (hardware/selected.json)."""
    return {
        "model_path": chosen.model_path,
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
        "rule": rule,
        "margin": margin,
        "reason": why,
        "candidates": [
            {"method": r.method, "library": r.library, "timesteps": r.timesteps, "accuracy": r.accuracy,
             "energy_per_image_j": r.energy_per_image_j, "model_path": r.model_path, "eligible": r in eligible}
            for r in candidates
        ],
    }


def choose(rows: list[ResultRow], rule: str, margin: float) -> tuple[ResultRow, dict]:
    """The selected row and a JSON-able account of the choice."""
    candidates = candidates_of(rows)
    reference = ann_accuracy(rows, candidates[0].dataset)
    eligible = candidates if rule == "max_accuracy" else [r for r in candidates if r.accuracy >= reference - margin]
    if not eligible:
        best = max(candidates, key=lambda r: r.accuracy)
        raise ModelError(f"select: no mappable SNN within select.margin={margin} of the ANN's {reference:.4f} "
                         f"(best {best.method} T={best.timesteps}: {best.accuracy:.4f}); raise select.margin")
    chosen, why = pick(eligible, rule, margin, reference)
    return chosen, account_of(chosen, why, rule, margin, reference, candidates, eligible)


def load_selected(split_hash: str, path: str | Path = paths.SELECTED) -> dict:
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
