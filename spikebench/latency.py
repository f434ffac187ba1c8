"""Latency comparisons of SNNs: how many timesteps each needs to reach a target accuracy.

Used by the RMP-SNN stage (Han et al. 2020) to compare its soft-reset network with
hard-reset (reset-to-zero) baselines: the latency factor at a target (ANN - gap) is the
ratio of the timesteps the baseline needs to those RMP needs. Also reads the strongest
reset-to-zero percentile conversion from the conversion stage's result rows.
"""

from __future__ import annotations

from spikebench.results import ResultRow


def timesteps_to_reach(curve: dict[int, float], target: float) -> int | None:
    """Smallest evaluated T whose accuracy reaches `target` (None if none does)."""
    reached = [t for t, acc in sorted(curve.items()) if acc >= target]
    return reached[0] if reached else None


def latency_factors(rmp: dict[int, float], baseline: dict[int, float], ann: float, gaps: list[float]) -> list[dict]:
    """For each target (ANN - gap): T needed by RMP and by the baseline, and their ratio."""
    out = []
    for gap in gaps:
        target = ann - gap
        t_rmp, t_base = timesteps_to_reach(rmp, target), timesteps_to_reach(baseline, target)
        if t_rmp is None:
            factor, note = None, "RMP does not reach the target within T_max"
        elif t_base is None:
            factor, note = (max(baseline) + 1) / t_rmp, f"baseline does not reach it within T={max(baseline)}: factor is a lower bound"
        else:
            factor, note = t_base / t_rmp, ""
        out.append({"gap": gap, "target_accuracy": round(target, 5), "rmp_timesteps": t_rmp, "baseline_timesteps": t_base,
                    "factor": factor, "note": note})
    return out


def conversion_sweep_rows(rows: list[ResultRow]) -> list[ResultRow]:
    """The sweep rows (every reset x percentile, on a fixed test subset) of results/conversion.json."""
    return [r for r in rows if r.extra.get("config") == "sweep"]


def sweep_images(sweep_rows: list[ResultRow]) -> int:
    """How many test images the conversion sweep ran on (0 without sweep rows)."""
    return sweep_rows[0].test_images if sweep_rows else 0


def percentile_curves(sweep_rows: list[ResultRow], reset: str) -> dict[float, dict[int, float]]:
    """Accuracy against T of every normalisation percentile converted with this reset."""
    curves: dict[float, dict[int, float]] = {}
    for row in sweep_rows:
        if row.extra.get("reset") == reset:
            curves.setdefault(row.extra["percentile"], {})[row.timesteps] = row.accuracy
    return curves


def best_percentile_curve(sweep_rows: list[ResultRow], reset: str = "zero") -> tuple[float, dict[int, float]] | None:
    """(percentile, curve) of the strongest conversion with this reset: the largest accuracy summed over
    its T (first such percentile on ties); None when the sweep has no row with this reset."""
    curves = percentile_curves(sweep_rows, reset)
    if not curves:
        return None
    best = max(curves, key=lambda p: sum(curves[p].values()))
    return best, curves[best]


def comparison_summary(baselines: dict[str, dict]) -> dict[str, list[dict]]:
    """Per baseline, the target / T / factor of each comparison (the notes left out)."""
    keys = ("target_accuracy", "rmp_timesteps", "baseline_timesteps", "factor")
    return {name: [{k: c[k] for k in keys} for c in entry["comparisons"]] for name, entry in baselines.items()}
