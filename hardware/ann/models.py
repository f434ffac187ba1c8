"""The float ANNs the array runs: the baseline (models/ann.pt) and the spatially pruned ANN
st_pruning converts (its "slim ANN"; PCA channel pruning + brief retraining).

st_pruning does not save its slim ANN (only the SNN made from it), so `pruned_ann` loads
models/st_pruning_ann.pt when a run has saved one, and otherwise rebuilds it exactly as
st_pruning's spatial phase does (same settings from params.yaml `st_pruning`, same seed):
the same PCA widths and the same retraining, on this machine's device.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from torch import nn

from baselines.models import ArchConfig, build_model, load_ann
from spikebench.data import SplitData, check_split_hash
from spikebench.io import load_checkpoint
from spikebench.params import PROFILES, load_common, read_params_file
from spikebench.pca_pruning import SpatialSettings, spatial_pruning
from spikebench.training import seed_everything

PRUNED_ANN = Path("models/st_pruning_ann.pt")


class _NoRun:
    """Stands in for the MLflow run st_pruning logs its retraining epochs to."""

    def log_metrics(self, *args: object, **kwargs: object) -> None:
        return None


def spatial_settings(raw: dict | None = None) -> SpatialSettings:
    """st_pruning's spatial-phase settings from params.yaml `st_pruning` (active profile): the values
    of methods.st_pruning's `StPruningParams.spatial()`, which a library module may not import
    (it is a stage module); tests/hardware/ann/test_ann_models.py keeps the two equal."""
    raw = read_params_file() if raw is None else raw
    profile = load_common(raw).profile
    body = dict(raw.get("st_pruning") or {})
    overrides = {name: body.pop(name) for name in PROFILES if name in body}
    body.update(overrides.get(profile, {}))
    return SpatialSettings(body["variance_fraction"], body["pca_source"], body["calibration_size"], body["timesteps"][0],
                           body["percentile"], body["ann_epochs"], body["ann_lr"], body["batch_size"] * 2)


def pruned_ann(data: SplitData, seed: int, device: str, path: Path = PRUNED_ANN) -> nn.Sequential:
    """The slim ANN of st_pruning in eval mode (saved checkpoint if present, else rebuilt)."""
    if path.exists():
        state, meta = load_checkpoint(path)
        check_split_hash(data.split_hash, meta.get("split_hash", ""), str(path))
        model = build_model(ArchConfig.from_meta(meta))
        model.load_state_dict(state)
        return model.eval()
    ann, _ = load_ann(data)
    seed_everything(seed)  # as st_pruning's run_stage, before its spatial phase
    with tempfile.TemporaryDirectory() as scratch:
        slim, _ = spatial_pruning(ann, data, spatial_settings(), seed=seed, device=device, run=_NoRun(),
                                  checkpoint=Path(scratch) / "slim_ann.pt")
    return slim
