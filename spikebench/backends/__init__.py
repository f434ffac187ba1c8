"""The same converted SNN run in other libraries (snntorch, norse, spikingjelly) and brian2.

Each library adapter builds a step-by-step network from a `SpikingNetwork`: the same
conv/linear/pool modules (weights copied) with the library's own neuron model between
them, run the idiomatic way (one timestep at a time, every layer every step). The
brian2 check (`brian2_if`) is an independent, event-driven simulation of the IF dynamics.

  snntorch      `snn.Leaky(beta=leak, reset_mechanism=reset)`: fires on v > threshold
                (the engine fires on v >= threshold; they differ only on exact ties)
  spikingjelly  `IFNode(v_reset=None)` (soft reset) or `IFNode(v_reset=0)`: fires on >=, exact
  norse         `IAFCell`: integrate-and-fire with *hard* reset only (no soft reset in
                norse 1.1.0), fires on >; it matches the engine's reset "zero" networks
"""

from __future__ import annotations

from spikebench.backends.steploop import LIBRARIES, StepLoopNetwork, build_backend

__all__ = ["LIBRARIES", "StepLoopNetwork", "build_backend"]
