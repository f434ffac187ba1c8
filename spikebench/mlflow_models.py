"""Models as MLflow logs them: the SNN engine as a pyfunc classifier, the ANN through `mlflow.pytorch`.

Imported only when tracking is on (it imports mlflow). An SNN is logged as an `SnnClassifier`
pyfunc whose one artifact is the stage's contract checkpoint (`spikebench.spiking.save_snn`);
`predict` takes images (N, C, H, W) in [0, 1] and returns class indices after the checkpoint's T
(or the `timesteps` param). Models are written to MLflow's own artifact store, never into a
DVC out, and with explicit pip requirements so MLflow does not re-load them to infer any.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import torch

ARTIFACT = "model"  # the name every stage's model carries in its run


def requirements() -> list[str]:
    return [f"torch=={torch.__version__.split('+')[0]}", f"numpy=={np.__version__}", f"mlflow=={mlflow.__version__}"]


class SnnClassifier(mlflow.pyfunc.PythonModel):
    """A `SpikingNetwork` checkpoint as a classifier: images in, predicted classes out."""

    batch_size = 256

    def load_context(self, context: Any) -> None:
        from spikebench.spiking import load_snn

        self.net, self.meta = load_snn(context.artifacts["checkpoint"])

    def predict(self, context: Any, model_input: np.ndarray, params: dict | None = None) -> np.ndarray:  # ndarray: MLflow infers no schema from the hint
        from spikebench.spiking import simulate

        timesteps = int((params or {}).get("timesteps") or self.meta["timesteps"])
        x = torch.as_tensor(np.asarray(model_input, dtype=np.float32))
        return simulate(self.net, x, timesteps, self.batch_size).predictions().numpy().astype(np.int64)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Keep MLflow's advice (cloudpickle, type hints) and download progress bars out of the stage's output."""
    logger = logging.getLogger("mlflow.pyfunc")
    level, bar = logger.level, os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    logger.setLevel(logging.ERROR)
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            yield
    finally:
        logger.setLevel(level)
        if bar is None:
            os.environ.pop("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", None)
        else:
            os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = bar


def _example(images: Any) -> np.ndarray:
    return np.ascontiguousarray(torch.as_tensor(images).detach().cpu().numpy(), dtype=np.float32)


def log_snn(checkpoint: str | Path, images: Any) -> Any:
    """Log the SNN checkpoint as a pyfunc classifier in the active run; its `ModelInfo`."""
    from mlflow.models import infer_signature

    from spikebench.spiking import load_snn

    example = _example(images)
    model = SnnClassifier()
    model.net, model.meta = load_snn(checkpoint)
    timesteps = int(model.meta["timesteps"])
    signature = infer_signature(example, model.predict(None, example), params={"timesteps": timesteps})
    with quiet():
        return mlflow.pyfunc.log_model(name=ARTIFACT, python_model=SnnClassifier(), artifacts={"checkpoint": str(checkpoint)},
                                       signature=signature, input_example=example, pip_requirements=requirements(),
                                       metadata={"kind": "snn", "method": model.meta.get("method", ""), "timesteps": timesteps})


def log_ann(model: torch.nn.Module, images: Any) -> Any:
    """Log a torch classifier with `mlflow.pytorch` (signature: images in, class logits out); its `ModelInfo`."""
    from mlflow.models import infer_signature

    example = _example(images)
    model = model.cpu().eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(example)).numpy()
    with quiet():
        return mlflow.pytorch.log_model(model, name=ARTIFACT, signature=infer_signature(example, logits), input_example=example,
                                        pip_requirements=requirements(), metadata={"kind": "ann"})
