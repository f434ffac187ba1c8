"""The stdp stage end to end on the smoke profile (digits 8x8) in a scratch directory."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from spikebench.data import load_dataset, load_prepared, make_splits, write_prepared
from spikebench.errors import ParamsError
from spikebench.params import load_section
from spikebench.results import read_rows
from spikebench.stdp_learning import SilentLayerWarning
from tests.predictions_check import assert_rows_match_their_predictions

REPO = Path(__file__).resolve().parents[2]


def make_stage_dir(root: Path, **stdp_smoke) -> Path:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["profile"] = "smoke"
    params["stdp"]["smoke"].update(stdp_smoke)
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    raw = load_dataset("digits")
    write_prepared(root / "data/prepared", raw, make_splits(raw, 0.1, 0.2, 0), 0)
    return root


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    from methods import stdp

    root = make_stage_dir(tmp_path_factory.mktemp("stdp"))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("SPIKEBENCH_TRACKING", "off")
        stdp.main()
    return root


@pytest.mark.slow
def test_stage_rows_control_and_plots(smoke_run):
    rows = read_rows(smoke_run / "results/stdp.json")
    by_config = {(r.extra["pooling"], r.extra.get("control")): r for r in rows}
    assert set(by_config) == {("2x2", None), ("global", None), ("2x2", "random")}
    headline, paper, control = by_config[("2x2", None)], by_config[("global", None)], by_config[("2x2", "random")]
    assert headline.method == "stdp" and headline.library == "spikebench" and headline.dataset == "digits"
    # only the STDP network at the first pooling grid is a headline row
    assert headline.headline is True and paper.headline is False and control.headline is False
    assert all("leaderboard" not in r.extra for r in rows) and {r.test_images for r in rows} == {len(load_prepared(smoke_run / "data/prepared").test[1])}
    # STDP features are informative and clearly better than the untrained network's at the same pooling
    assert headline.accuracy > 0.6 and headline.accuracy >= control.accuracy + 0.05
    assert headline.timesteps == 8 and headline.spikes_per_image > 0 and headline.synops_per_image > 0
    assert headline.energy_per_image_j == pytest.approx(4.6e-12 * headline.macs_per_image + 0.9e-12 * headline.synops_per_image)
    assert set(headline.extra["spikes_per_layer"]) == {"input", "conv1", "pool1"}
    assert headline.extra["train_images"] == [300, 300] and len(headline.extra["convergence"]) == 2
    # every SVM readout (the random control too) saved its class for every test image
    assert_rows_match_their_predictions(smoke_run, rows, load_prepared(smoke_run / "data/prepared").test[1])
    for name in ("convergence", "conv1_kernels", "accuracy"):
        assert (smoke_run / f"reports/stdp_{name}.png").stat().st_size > 1000


@pytest.mark.slow
def test_too_high_threshold_warns_naming_the_silent_layer(tmp_path, monkeypatch):
    from methods import stdp

    root = make_stage_dir(tmp_path, thresholds=[500.0, 4.0], train_images=[20, 20], pooling=[1])
    monkeypatch.chdir(root)
    with pytest.warns(SilentLayerWarning, match=r"layer conv1 is silent.*stdp\.thresholds\[0\] \(now 500\)"):
        stdp.main()


def test_params_lists_must_match_the_layers(tmp_path):
    from methods.stdp import StdpParams

    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["stdp"]["winners"] = [5]
    with pytest.raises(ParamsError, match=r"stdp\.winners needs one value per layer \(2"):
        load_section(StdpParams, "stdp", raw=raw)
