"""Stage `baseline`: train the default ANN, save it, write results/baseline.json.

Training checkpoints every epoch (under checkpoints/, keyed by params and split) and
resumes after an interruption. Launch with `torchrun --nproc_per_node N -m
baselines.baseline` to train data-parallel; rank 0 writes the outputs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from baselines.models import ARCHS, ArchConfig, build_model
from spikebench import paths
from spikebench.data import SplitData, load_prepared
from spikebench.distributed import init_from_env, shutdown
from spikebench.energy import MacCounter, count_params
from spikebench.errors import cli_main
from spikebench.io import save_checkpoint
from spikebench.params import constraint, load_section, resolve_device
from spikebench.plots import plot_training_curve
from spikebench.predictions import Predictions
from spikebench.results import RowContext, write_rows
from spikebench.tracking import stage_run
from spikebench.training import EpochStats, fit, scored_predictions, seed_everything

CHECKPOINT_DIR = Path("checkpoints")  # resumable training state (not a DVC output)


@dataclass(frozen=True)
class BaselineParams:
    arch: str = constraint(choices=ARCHS)
    channels: list[int] = constraint(min=1)  # empty: the architecture's default widths
    batch_norm: bool = constraint()
    bias: bool = constraint()
    epochs: int = constraint(min=1)
    batch_size: int = constraint(min=1)  # global batch, split across torchrun processes
    lr: float = constraint(min_exclusive=0.0)
    weight_decay: float = constraint(min=0.0)


def checkpoint_path(params: BaselineParams, split_hash: str, seed: int) -> Path:
    """Resume only a run with the same params, data split and seed."""
    key = json.dumps([asdict(params), split_hash, seed], sort_keys=True)
    return CHECKPOINT_DIR / f"baseline-{hashlib.sha256(key.encode()).hexdigest()[:12]}.pt"


@cli_main
def main() -> None:
    common, params = load_section(BaselineParams, "baseline")
    device = resolve_device(common.device)
    rank, world = init_from_env(device)
    data = load_prepared()
    seed_everything(common.seed)
    config = ArchConfig(params.arch, data.input_shape, data.num_classes, params.batch_norm, params.bias, tuple(params.channels))
    model = build_model(config)
    resume = checkpoint_path(params, data.split_hash, common.seed)

    with stage_run("baseline", method="ann", library="torch", dataset=data.dataset, split_hash=data.split_hash,
                   params=params, enabled=rank == 0) as run:
        def log_epoch(stats: EpochStats) -> None:
            run.log_metrics({"train_loss": stats.train_loss, "train_accuracy": stats.train_accuracy,
                             "val_accuracy": stats.val_accuracy, "epoch_seconds": stats.seconds}, step=stats.epoch)
            if rank == 0:
                print(f"baseline epoch {stats.epoch}: loss {stats.train_loss:.4f} val {stats.val_accuracy:.4f} ({stats.seconds:.1f}s)")

        history = fit(model, data.train, data.val, epochs=params.epochs, batch_size=params.batch_size, lr=params.lr,
                      weight_decay=params.weight_decay, seed=common.seed, device=device, on_epoch=log_epoch, checkpoint=resume)
        model.cpu().eval()
        test_accuracy, predicted = scored_predictions(model, data.test)
        if rank == 0:
            write_outputs(model, config, params, data, history, (test_accuracy, predicted), common.seed, device, world, run)
            resume.unlink(missing_ok=True)
    shutdown()
    if rank == 0:
        print(f"baseline: test accuracy {test_accuracy:.4f}, trained in {sum(s.seconds for s in history):.0f}s on {device} x{world}")


def write_outputs(model, config: ArchConfig, params: BaselineParams, data: SplitData, history: list[EpochStats],
                  scored: tuple[float, torch.Tensor], seed: int, device: str, world: int, run) -> None:
    """models/ann.pt, the training curve and the ANN row of results/baseline.json (rank 0 only).

    `scored`: the test accuracy and the class predicted for each test image (the row's predictions file,
    against which the leaderboard pairs every other row)."""
    test_accuracy, predicted = scored
    train_seconds = sum(s.seconds for s in history)
    macs = MacCounter(model).count(data.input_shape)
    run.log_metrics({"test_accuracy": test_accuracy, "train_seconds": train_seconds, "macs_per_image": macs})
    meta = {**config.to_meta(), "dataset": data.dataset, "split_hash": data.split_hash, "test_accuracy": test_accuracy}
    save_checkpoint(paths.ANN_MODEL, model.state_dict(), meta)
    plot_training_curve(history, paths.BASELINE_CURVE, title=f"{params.arch} on {data.dataset}")
    run.log_artifact(paths.BASELINE_CURVE)
    run.log_torch_model(model, data.test[0][:2])
    row = RowContext.of(data, seed, run).row(
        "ann", "torch", params.arch, timesteps=0, accuracy=test_accuracy, test_images=len(data.test[1]),
        ann_accuracy=test_accuracy, macs_per_image=float(macs), params=count_params(model), weight_bits=32,
        extra={"epochs": params.epochs, "device": device, "processes": world}, predictions=Predictions.of(predicted),
    )
    write_rows(paths.BASELINE_RESULTS, [row])
    run.log_headline([row])


if __name__ == "__main__":
    main()
