"""Tests of the propagation energy J = <a, a - G a>."""
import numpy as np
import pytest
import torch

import iaffinity_plugins  # noqa: F401
from iaffinity_plugins.evaluation.energy import (mean_energy, one_hot_labels,
                                                 propagation_energy)
from iaffinity_plugins.labels.label_io import write_label
from iaffinity_plugins.models.heads.spn_head import SPNHead


class FixedGates(torch.nn.Module):
    """Refiner stand-in: the real SPN head with image-independent gates."""

    def __init__(self, gate_value, **head):
        super().__init__()
        self.head = SPNHead(num_classes=3, propagation_stride=1,
                            **head).eval()
        torch.nn.init.zeros_(self.head.conv_gates.weight)
        torch.nn.init.constant_(self.head.conv_gates.bias, gate_value)

    def apply_affinity(self, inputs, a, data_samples=None):
        return self.head.apply_affinity(a, self.head.gates(inputs))


class RightNeighbourMix:
    """(G a)_i = (1 - w) a_i + w a_(i + 1 to the right), 0 past the border:
    non-negative, rows summing to 1 except at the right border."""

    def __init__(self, weight):
        self.weight = weight

    def apply_affinity(self, inputs, a, data_samples=None):
        self.seen_samples = data_samples
        right = torch.nn.functional.pad(a[..., 1:], (0, 1))
        return (1 - self.weight) * a + self.weight * right


def test_hand_computed_energy_is_normalised_to_labelled_pixels():
    inputs = torch.zeros(1, 3, 1, 2)
    mix = RightNeighbourMix(0.4)

    def energy(labels):
        return float(propagation_energy(mix, inputs,
                                        torch.tensor([[labels]]), 3))

    # Pixel 0 (class 0) sends 0.4 of its mass to a class-1 pixel; pixel 1
    # has only itself (the border), whose row G' renormalises to 1.
    assert energy([0, 1]) == pytest.approx(0.4 / 2)
    assert energy([1, 1]) == pytest.approx(0.0)  # a constant map
    # An unknown neighbour neither adds energy nor dilutes the row.
    assert energy([0, 255]) == pytest.approx(0.0)
    assert energy([255, 255]) == 0.0  # no labelled pixel


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


def test_constant_map_zero_and_non_negative_gates_non_negative():
    inputs = torch.randn(2, 3, 12, 10)
    refiner = FixedGates(0.3, **PURE)  # positive gates, sum 0.9
    constant = torch.ones(2, 12, 10, dtype=torch.long)
    torch.testing.assert_close(
        propagation_energy(refiner, inputs, constant, 3), torch.zeros(2),
        atol=1e-5, rtol=0)
    noisy = torch.randint(0, 3, (2, 12, 10),
                          generator=torch.Generator().manual_seed(0))
    noisy[:, :4] = 255
    energy = propagation_energy(refiner, inputs, noisy, 3)
    assert (energy > 0).all() and (energy <= 1).all()


class OneRowImages:
    """Data set stand-in: 1 x 2 images by id, in the order ``ids``."""

    metainfo = dict(classes=('background', 'a', 'b'))

    def __init__(self, ids):
        self.ids = ids

    def __len__(self):
        return len(self.ids)

    def get_data_info(self, index):
        return dict(img_id=self.ids[index])

    def prepare_data(self, index):
        return dict(inputs=torch.zeros(3, 1, 2), data_samples=None)


def test_mean_energy_of_a_folder_over_the_first_images_by_id(tmp_path):
    write_label(str(tmp_path / 'x.png'), np.array([[0, 1]], np.uint8))
    write_label(str(tmp_path / 'y.png'), np.array([[1, 1]], np.uint8))
    mix = RightNeighbourMix(0.4)
    # the images' samples reach apply_affinity (a G that depends on alpha_u)
    mix.data_preprocessor = lambda data, training: dict(
        inputs=torch.stack(data['inputs']), data_samples=['sample'])
    images = OneRowImages(['y', 'x'])
    # x (J = 0.4 / 2, as hand-computed above) comes first by id.
    assert mean_energy(mix, images, str(tmp_path), 1) == pytest.approx(0.2)
    assert mix.seen_samples == ['sample']
    assert mean_energy(mix, images, str(tmp_path), 5) == pytest.approx(0.1)
    assert mean_energy(mix, images, str(tmp_path), 0) is None


def test_mean_energy_at_the_short_edge_the_e_step_read(tmp_path):
    """With ``short_edge`` G is applied to the image at that short edge and
    the labels are resized to it: [[0, 1]] read at 2 px is a 2 x 4 map with
    one class change per row of four, J = 2 * 0.4 / 8."""
    write_label(str(tmp_path / 'x.png'), np.array([[0, 1]], np.uint8))
    mix = RightNeighbourMix(0.4)
    seen = []
    mix.data_preprocessor = lambda data, training: dict(
        inputs=torch.stack(data['inputs']), data_samples=None)
    apply_affinity = mix.apply_affinity
    mix.apply_affinity = lambda inputs, a, samples=None: (
        seen.append(tuple(inputs.shape[2:])) or apply_affinity(inputs, a))
    images = OneRowImages(['x'])
    assert mean_energy(mix, images, str(tmp_path), 1,
                       short_edge=2) == pytest.approx(0.1)
    assert set(seen) == {(2, 4)}
