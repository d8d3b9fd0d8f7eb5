"""Tests of the propagation energy J = <a, a - G a>."""
import pytest
import torch

import iaffinity_plugins  # noqa: F401
from iaffinity_plugins.evaluation.energy import (one_hot_labels,
                                                 propagation_energy)
from iaffinity_plugins.models.heads.spn_head import SPNHead


class FixedGates(torch.nn.Module):
    """Refiner stand-in: the real SPN head with image-independent gates."""

    def __init__(self, gate_value, **head):
        super().__init__()
        self.head = SPNHead(num_classes=3, propagation_stride=1,
                            **head).eval()
        torch.nn.init.zeros_(self.head.conv_gates.weight)
        torch.nn.init.constant_(self.head.conv_gates.bias, gate_value)

    def apply_affinity(self, inputs, a):
        return self.head.apply_affinity(a, self.head.gates(inputs))


class Linear:
    """apply_affinity = scale * a: J = 1 - scale per labelled pixel."""

    def __init__(self, scale):
        self.scale = scale

    def apply_affinity(self, inputs, a):
        return self.scale * a


def test_hand_computed_with_scaled_identity():
    labels = torch.tensor([[[0, 1], [255, 2]], [[255, 255], [255, 255]]])
    inputs = torch.zeros(2, 3, 2, 2)
    torch.testing.assert_close(
        propagation_energy(Linear(0.25), inputs, labels, 3),
        torch.tensor([0.75, 0.0]))  # 3 x (1 - 0.25) / 3; no labels -> 0


PURE = dict(propagation_channels=None, output='normalized')


@pytest.mark.parametrize('head', [{}, PURE])
def test_zero_gates_give_zero_energy(head):
    labels = torch.randint(0, 3, (2, 10, 9))
    labels[:, :3] = 255
    energy = propagation_energy(FixedGates(0.0, **head), torch.randn(2, 3, 10, 9),
                                labels, 3)
    torch.testing.assert_close(energy, torch.zeros(2))


@pytest.mark.parametrize('head', [{}, PURE])
def test_smooth_labels_have_lower_energy_than_noisy(head):
    gen = torch.Generator().manual_seed(0)
    smooth = torch.zeros(1, 16, 16, dtype=torch.long)
    smooth[:, :, 8:] = 1
    smooth[:, 10:, :] = 2
    noisy = torch.randint(0, 3, (1, 16, 16), generator=gen)
    refiner = FixedGates(0.3, **head)  # uniform gates, sum 0.9 per direction
    inputs = torch.randn(1, 3, 16, 16)
    j_smooth = propagation_energy(refiner, inputs, smooth, 3)
    j_noisy = propagation_energy(refiner, inputs, noisy, 3)
    assert 0 < j_smooth < j_noisy


def test_one_hot_and_bad_labels():
    onehot = one_hot_labels(torch.tensor([[[2, 255]]]), 3)
    torch.testing.assert_close(
        onehot, torch.tensor([[[[0., 0.]], [[0., 0.]], [[1., 0.]]]]))
    with pytest.raises(ValueError, match='outside'):
        one_hot_labels(torch.tensor([[[3]]]), 3)
    with pytest.raises(ValueError, match='integer'):
        one_hot_labels(torch.zeros(1, 2, 2), 3)
