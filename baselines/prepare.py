"""Stage `prepare`: load the profile's dataset, write hashed train/val/test splits."""

from __future__ import annotations

from dataclasses import dataclass

from spikebench import paths
from spikebench.data import DATASETS, load_dataset, make_splits, write_prepared
from spikebench.errors import cli_main
from spikebench.params import constraint, load_section
from spikebench.tracking import stage_run


@dataclass(frozen=True)
class DataParams:
    dataset: str = constraint(choices=DATASETS)
    data_dir: str | None = constraint()  # where mnist/cifar10 (or another fashion_mnist copy) live
    val_fraction: float = constraint(min_exclusive=0.0, max=0.5)
    test_fraction: float = constraint(min_exclusive=0.0, max=0.5)  # only without an official test set


@cli_main
def main() -> None:
    common, params = load_section(DataParams, "data")
    raw = load_dataset(params.dataset, params.data_dir)
    splits = make_splits(raw, params.val_fraction, params.test_fraction, common.seed)
    manifest = write_prepared(paths.PREPARED_DIR, raw, splits, common.seed, params.data_dir)
    with stage_run("prepare", method="ann", library="torch", dataset=raw.name, split_hash=manifest["split_hash"], params=params) as run:
        run.log_metrics({f"n_{k}": v for k, v in manifest["sizes"].items()})
    print(f"prepare: {raw.name} split {manifest['split_hash']} sizes {manifest['sizes']}")


if __name__ == "__main__":
    main()
