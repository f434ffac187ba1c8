"""Stage `nir`: export the selected SNN (hardware/selected.json) to NIR, re-import it through
snntorch, and check that its predictions match our engine's on the test split.

Writes models/selected.nir and reports/nir.json (agreement, both accuracies, T).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from hardware.selection import load_selected
from spikebench import paths
from spikebench.data import load_prepared
from spikebench.errors import SpikebenchError, cli_main
from spikebench.io import atomic_write_json
from spikebench.nir_interchange import imported_membrane, read_graph, snntorch_from_nir, to_nir, write_graph
from spikebench.params import constraint, load_section
from spikebench.spiking import load_snn, simulate
from spikebench.tracking import stage_run


@dataclass(frozen=True)
class NirParams:
    images: int = constraint(min=0)                      # test images compared; 0 = the whole test split
    min_agreement: float = constraint(min=0.0, max=1.0)  # fraction of identical predictions required
    batch_size: int = constraint(min=1)


@cli_main
def main() -> None:
    _, params = load_section(NirParams, "nir")
    data = load_prepared()
    selected = load_selected(data.split_hash)
    net, _meta = load_snn(selected["model_path"])
    timesteps = int(selected["timesteps"])
    x, y = data.test
    if params.images:
        x, y = x[: params.images], y[: params.images]

    with stage_run("nir", method=selected["method"], library="snntorch", dataset=data.dataset, split_hash=data.split_hash,
                   params={"nir": asdict(params), "model": selected["model_path"]}) as run:
        write_graph(to_nir(net, tuple(data.input_shape), timesteps), paths.NIR_MODEL)
        module = snntorch_from_nir(read_graph(paths.NIR_MODEL))
        ours = simulate(net, x, timesteps, params.batch_size, progress="engine").predictions()
        theirs = imported_membrane(module, x, timesteps, params.batch_size).argmax(1)
        agreement = float((ours == theirs).float().mean())
        report = {
            "model_path": selected["model_path"],
            "nir_path": str(paths.NIR_MODEL),
            "timesteps": timesteps,
            "images": len(y),
            "agreement": agreement,
            "differing_images": int((ours != theirs).sum()),
            "engine_accuracy": float((ours == y).float().mean()),
            "snntorch_accuracy": float((theirs == y).float().mean()),
            "importer": "snntorch 1.0.0 node builders via nirtorch; IF and Flatten built per the NIR spec (spikebench/nir_interchange.py)",
        }
        run.log_metrics({k: report[k] for k in ("agreement", "engine_accuracy", "snntorch_accuracy", "differing_images")})
        atomic_write_json(paths.NIR_REPORT, report)
        run.log_artifact(paths.NIR_MODEL, "nir")
        if agreement < params.min_agreement:
            raise SpikebenchError(f"nir: snntorch's import of {paths.NIR_MODEL} agrees with the engine on {agreement:.4%} of "
                                  f"{len(y)} test images, below nir.min_agreement={params.min_agreement}")
        run.register_selected(selected["model_path"], x[:2], tags={k: selected.get(k, "") for k in ("method", "timesteps", "dataset", "split_hash")})
    print(f"nir: {paths.NIR_MODEL} re-imported through snntorch agrees on {agreement:.2%} of {len(y)} test images "
          f"(engine {report['engine_accuracy']:.4f}, snntorch {report['snntorch_accuracy']:.4f}, T={timesteps})")


if __name__ == "__main__":
    main()
