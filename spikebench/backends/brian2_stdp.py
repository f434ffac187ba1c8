"""brian2 reference for the simplified STDP rule of Kheradpisheh et al. 2018.

One post-synaptic, non-leaky IF neuron receives a fixed set of pre-synaptic spike times
(`SpikeGeneratorGroup`, one spike per input at most) through plastic `Synapses`:

  on_pre:   v_post += w ; tpre = t
  on_post:  w += a+ w(1-w) if tpre <= tpost else -a- w(1-w)

simulated event-driven by brian2 in float64 with numpy code generation (no compiler).
Step k of our discrete model is brian2 time k*dt. Our layers count an input spike in the
potential of the same step, so the neuron's threshold and reset are scheduled after the
synapses (`when="after_synapses"`): inputs at step k -> v -> threshold at step k. The
reset records the spike time (`tpost = t`) and clamps v far below threshold (one spike
per neuron). brian2 runs the post pathway in the next step's synapse slot, after that
step's pre spikes set `tpre`, so comparing `tpre <= tpost` (not `t`) keeps the rule's
"pre not later than post" exact; a pre neuron that never fires keeps tpre = +inf (LTD).
"""

from __future__ import annotations

import numpy as np

NEVER = None


def brian2_stdp_step(
    pre_times: list[int | None], weights: np.ndarray, threshold: float, timesteps: int, a_plus: float, a_minus: float
) -> tuple[int | None, np.ndarray]:
    """Simulate one image in brian2: the post spike step (None: silent) and the weights after it."""
    import brian2 as b2

    b2.prefs.codegen.target = "numpy"
    b2.BrianLogger.suppress_hierarchy("brian2.codegen")
    weights = np.asarray(weights, dtype=np.float64)
    dt = 1 * b2.ms
    fired = [(i, t) for i, t in enumerate(pre_times) if t is not None and t < timesteps]
    indices = np.array([i for i, _ in fired], dtype=int)
    times = np.array([t for _, t in fired], dtype=float) * dt
    pre = b2.SpikeGeneratorGroup(len(weights), indices, times, dt=dt)
    post = b2.NeuronGroup(
        1, "v : 1\ntpost : second", threshold="v >= threshold", reset="v = -1e12\ntpost = t", method="exact", dt=dt,
        namespace={"threshold": threshold},
    )
    post.thresholder["spike"].when = "after_synapses"
    post.resetter["spike"].when = "after_synapses"
    post.resetter["spike"].order = 1
    synapses = b2.Synapses(
        pre, post, "w : 1\ntpre : second",
        on_pre="v_post += w\ntpre = t",
        on_post="w += (a_plus * int(tpre <= tpost_post) - a_minus * int(tpre > tpost_post)) * w * (1 - w)",
        namespace={"a_plus": a_plus, "a_minus": a_minus}, dt=dt,
    )
    synapses.connect(j="0")
    synapses.w = weights
    synapses.tpre = np.inf * b2.second
    monitor = b2.SpikeMonitor(post)
    network = b2.Network(pre, post, synapses, monitor)
    network.run((timesteps + 2) * dt)  # +2: the post pathway runs one step after the spike
    spikes = np.asarray(monitor.t / dt)
    post_step = int(round(spikes[0])) if len(spikes) else NEVER
    order = np.argsort(np.asarray(synapses.i))
    return post_step, np.asarray(synapses.w)[order]
