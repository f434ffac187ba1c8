"""Stage `select`: pick the SNN to put in silicon from the methods' result rows.

The rule lives in `hardware.selection` (`min_energy` within `margin` of the ANN, or
`max_accuracy`); this stage applies it to the rows of `select.results` and writes
hardware/selected.json naming the model, the row it came from and why.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from hardware.selection import RULES, choose
from spikebench import paths
from spikebench.errors import cli_main
from spikebench.io import atomic_write_json
from spikebench.params import constraint, load_section
from spikebench.results import read_rows
from spikebench.tracking import stage_run


@dataclass(frozen=True)
class SelectParams:
    results: list[str] = constraint(nonempty=True)
    rule: str = constraint(choices=RULES)
    margin: float = constraint(min=0.0, max=1.0)  # accuracy below the ANN's, as a fraction (0.02 = 2 pp)


@cli_main
def main() -> None:
    _, params = load_section(SelectParams, "select")
    rows = [row for path in params.results for row in read_rows(path)]
    chosen, account = choose(rows, params.rule, params.margin)
    with stage_run("select", method="hardware", library="rtl", dataset=chosen.dataset, split_hash=chosen.split_hash,
                   params=dataclasses.asdict(params)) as run:
        atomic_write_json(paths.SELECTED, account)
        run.log_metrics({"candidates": len(account["candidates"]), "selected_accuracy": chosen.accuracy,
                         "selected_energy_uj": chosen.energy_per_image_j * 1e6})
        run.set_tags({"selected_model": account["model_path"], "selected_method": chosen.method})
        run.log_headline([chosen])
        run.log_artifact(paths.SELECTED)
    print(f"select: {chosen.method} T={chosen.timesteps} ({account['model_path']}): {account['reason']}")


if __name__ == "__main__":
    main()
