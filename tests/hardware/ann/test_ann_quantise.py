"""Post-training quantisation and the integer golden model: one-line refusals, the
multiply-shift factors, a hand-computed case, and the integer ANN next to the float one."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from hardware.ann import golden
from hardware.ann.quantise import MULT_BITS, SHIFT_MAX, quantise, requant_factors
from spikebench.errors import ModelError


def _calibration(shape: tuple[int, ...] = (1, 4, 4)) -> torch.Tensor:
    return torch.rand(16, *shape, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize(("layers", "message"), [
    ([nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 2)], r"layers.2 \(MaxPool2d\): not mappable"),
    ([nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(32, 2)], r"layers.1 \(BatchNorm2d\): fold batch norm"),
    ([nn.Conv2d(1, 2, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8, 2)], r"layers.0 \(Conv2d\): stride"),
    ([nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 2)], r"layers.0 \(Conv2d\): padding must be 'same'"),
    ([nn.Flatten(), nn.Linear(16, 4), nn.Linear(4, 2)], r"layers.1 \(Linear\): hidden layers need a ReLU"),
    ([nn.Flatten(), nn.Linear(16, 4), nn.ReLU(), nn.Linear(4, 2), nn.ReLU()], r"layers.3 \(Linear\): the output layer must be a plain"),
    ([nn.Flatten(), nn.Linear(16, 4), nn.ReLU(), nn.Linear(5, 2)], r"layers.3 \(Linear\): expects 5 inputs, the previous layer gives 4"),
    ([nn.Conv2d(1, 2, 2, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(50, 2)], r"layers.0 \(Conv2d\): kernel \(2, 2\) is not square and odd"),
    ([nn.Conv2d(1, 2, 3, padding=1), nn.AvgPool2d(4), nn.Flatten(), nn.Linear(2, 2)], r"layers.1 \(AvgPool2d\): only AvgPool2d\(2\)"),
])
def test_unmappable_models_are_refused_in_one_line(layers, message) -> None:
    with pytest.raises(ModelError, match=message) as err:
        quantise(nn.Sequential(*layers).eval(), _calibration(), 8)
    assert "\n" not in str(err.value)


def test_requant_factors_are_the_closest_multiplier_that_fits() -> None:
    for real in (1e-6, 3.7e-4, 0.0123, 0.5, 1.0, 1234.5):
        m, s = requant_factors(real, 0, nn.Linear(1, 1))
        assert 0 < m < 2**MULT_BITS and 1 <= s <= SHIFT_MAX
        assert abs(m / 2**s - real) <= 2 ** -(s + 1) + 1e-15
        assert s == SHIFT_MAX or 2 * (m + 1) > 2**MULT_BITS  # no larger shift would fit
    with pytest.raises(ModelError, match="over 16 bits"):
        requant_factors(2.0**17, 0, nn.Linear(1, 1))


def test_hand_computed_case() -> None:
    """fc(2->2)-ReLU-fc(2->2) with weights that quantise exactly; every step by hand."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2)).eval()
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[1.0, -0.5], [0.25, 0.75]]))
        model[1].bias.copy_(torch.tensor([0.0, 0.0]))
        model[3].weight.copy_(torch.tensor([[1.0, 0.0], [-1.0, 1.0]]))
        model[3].bias.zero_()
    calibration = torch.tensor([[[[1.0, 0.0]]]])  # layer-1 outputs: 1.0 and 0.25 -> percentile 100 = 1.0
    net = quantise(model, calibration, 3, percentile=100.0)  # 3 bits: w = round(W / (1/3)) = [[3, -2], [1, 2]]
    assert net.layers[0].weight.tolist() == [[3, -2], [1, 2]]
    # r = (1/255)(1/3) / (1/255) = 1/3 -> S = floor(log2(65535 * 3)) = 17, M = round(2^17 / 3) = 43691
    assert (net.layers[0].multiplier, net.layers[0].shift) == (43691, 17)
    image = np.array([[[[200, 100]]]], dtype=np.uint8)
    # acc = [600 - 200, 200 + 200] = [400, 400] -> (400 * 43691 + 2^16) >> 17 = 133
    logits, inputs = golden.forward(net, image, keep=True)
    assert inputs[1].ravel().tolist() == [133, 133]
    w2 = net.layers[1].weight  # 3 bits of [[1, 0], [-1, 1]]: [[3, 0], [-3, 3]]
    assert logits.tolist() == [[int(w2[0] @ [133, 133]), int(w2[1] @ [133, 133])]] == [[399, 0]]


def test_integer_ann_tracks_the_float_ann(digits_cnn, digits_data) -> None:
    """8-bit weights on the trained digits CNN: the same accuracy within 0.5 pp on its whole test split."""
    x, y = digits_data.test
    net = quantise(digits_cnn, digits_data.calibration(256, 0), 8)
    with torch.no_grad():
        float_accuracy = (digits_cnn(x).argmax(1) == y).float().mean().item()
    images = np.round(x.numpy() * 255).astype(np.uint8)
    int_accuracy = float((golden.classes(golden.predict(net, images)) == y.numpy()).mean())
    assert abs(int_accuracy - float_accuracy) <= 0.005 + 1e-9, (int_accuracy, float_accuracy)


def test_golden_counts_add_up_to_the_dense_macs(digits_cnn, digits_data) -> None:
    from spikebench.energy import MacCounter

    net = quantise(digits_cnn, digits_data.calibration(64, 0), 6)
    images = np.round(digits_data.test[0][:8].numpy() * 255).astype(np.uint8)
    counts = golden.counts(net, images, lanes=4)
    total = sum(c.issued + c.skipped for c in counts)
    assert (total == net.dense_macs()).all()
    assert net.dense_macs() == MacCounter(digits_cnn).count(digits_data.input_shape)
    assert all((c.skipped >= 0).all() and (c.weight_reads <= c.act_reads).all() for c in counts)
