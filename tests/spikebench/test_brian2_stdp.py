"""brian2 (numpy codegen) as the reference for the simplified STDP rule: same spikes in, same dw out."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spikebench.backends.brian2_stdp import brian2_stdp_step
from spikebench.stdp_learning import neuron_stdp_step


@pytest.mark.parametrize("seed, threshold, timesteps", [(0, 6.0, 10), (1, 3.0, 6), (2, 40.0, 10)])
def test_brian2_matches_our_stdp_update(seed, threshold, timesteps):
    rng = np.random.default_rng(seed)
    n = 40
    pre = rng.integers(0, timesteps + 1, n)  # value == timesteps: that input never spikes
    weights = rng.uniform(0.05, 0.95, n)
    a_plus, a_minus = 0.05, 0.04
    post_b, w_b = brian2_stdp_step([int(t) if t < timesteps else None for t in pre], weights, threshold, timesteps, a_plus, a_minus)
    post_o, w_o = neuron_stdp_step(torch.tensor(pre, dtype=torch.int16), torch.tensor(weights), threshold, timesteps, a_plus, a_minus)
    assert post_b == post_o
    np.testing.assert_allclose(w_b, w_o.numpy(), rtol=0, atol=1e-12)
    if post_o is None:  # threshold out of reach: silent, no learning
        assert threshold == 40.0 and np.array_equal(w_b, weights)
    else:  # the inputs cover LTP, LTD, ties at the post step and the step right after it
        assert set(pre) >= {post_o, post_o + 1} and (w_b > weights).any() and (w_b < weights).any()
