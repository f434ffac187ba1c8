"""Operation counts and the 45 nm energy model (Horowitz, ISSCC 2014).

  E_ANN = E_MAC * MACs
  E_SNN = E_MAC * MACs(analog first layer) + E_AC * SOPs(spiking layers)

with E_MAC = 4.6 pJ (fp32 multiply-accumulate) and E_AC = 0.9 pJ (fp32 add). Memory
access energy is ignored by this model, as in the papers it is compared with.
"""

from __future__ import annotations

import torch
from torch import nn

E_MAC_J = 4.6e-12
E_AC_J = 0.9e-12


def energy_joules(macs: float, synops: float) -> float:
    """Compute energy of one inference under the 45 nm op model."""
    return E_MAC_J * macs + E_AC_J * synops


class MacCounter:
    """Dense multiply-accumulates per image of the synaptic layers (Conv2d, Linear).

    Defined as in NeuroBench's dense synaptic operations: every weight of a layer is
    used once per output position, whatever the input value.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.per_layer: dict[str, int] = {}

    def count(self, input_shape: tuple[int, ...]) -> int:
        hooks = []
        for name, module in self.model.named_modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                hooks.append(module.register_forward_hook(self._hook(name)))
        try:
            param = next(self.model.parameters())
            with torch.no_grad():
                self.model(torch.zeros((1, *input_shape), dtype=param.dtype, device=param.device))
        finally:
            for hook in hooks:
                hook.remove()
        return sum(self.per_layer.values())

    def _hook(self, name: str):
        def record(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            if isinstance(module, nn.Conv2d):
                per_output = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
            else:
                per_output = module.in_features
            self.per_layer[name] = int(output[0].numel() * per_output)

        return record


def count_params(model: nn.Module) -> tuple[int, int]:
    """(all parameters, non-zero parameters) of a model."""
    total = sum(p.numel() for p in model.parameters())
    nonzero = sum(int(torch.count_nonzero(p)) for p in model.parameters())
    return total, nonzero
