"""PSA's affinity loss: pair labels and the balanced loss, by hand."""
import math

import pytest
import torch

import iaffinity_plugins  # noqa: F401
from iaffinity_plugins.models.losses.affinity_loss import affinity_pair_labels
from iaffinity_plugins.registry import MODELS

# radius 2: offsets (0, 1), (1, -1), (1, 0), (1, 1); on a one-row map only
# (0, 1) has partners: (0,0) bg, (0,2) negative, (2,2) fg, (2,255) ignored,
# and the last pixel's partner is outside the map.
OFFSETS = [(0, 1), (1, -1), (1, 0), (1, 1)]
LABELS = torch.tensor([[[0, 0, 2, 2, 255]]])


def test_pair_labels():
    pairs = affinity_pair_labels(LABELS, OFFSETS)
    assert pairs['bg'][0, 0, 0].tolist() == [True, False, False, False,
                                             False]
    assert pairs['neg'][0, 0, 0].tolist() == [False, True, False, False,
                                              False]
    assert pairs['fg'][0, 0, 0].tolist() == [False, False, True, False,
                                             False]
    for mask in pairs.values():  # no partner below a one-row map
        assert not mask[:, 1:].any()
    with pytest.raises(ValueError, match='integer'):
        affinity_pair_labels(LABELS.float(), OFFSETS)


def test_balanced_loss_by_hand():
    affinity = torch.full((1, 4, 1, 5), 0.9)
    affinity[0, 0, 0] = torch.tensor([0.5, 0.25, 0.8, 0.3, 0.1])
    loss = MODELS.build(dict(type='AffinityLoss', loss_weight=2.0, eps=0.0))
    expected = 2.0 * ((-math.log(0.8) - math.log(0.5)) / 4 -
                      math.log(1 - 0.25) / 2)
    assert loss(affinity, LABELS, OFFSETS).item() == pytest.approx(expected)
    assert loss.loss_name == 'loss_affinity'
    # no known pair at all: 0, not NaN
    unknown = torch.full_like(LABELS, 255)
    assert loss(affinity, unknown, OFFSETS).item() == 0
    with pytest.raises(ValueError, match='P=4'):
        loss(affinity[:, :3], LABELS, OFFSETS)
