"""MultiLabelSoftMarginLoss against hand-computed values."""
import math

import pytest
import torch

from iaffinity_plugins.models.losses import MultiLabelSoftMarginLoss
from iaffinity_plugins.registry import MODELS


def test_hand_computed_value():
    logits = torch.tensor([[0.0, math.log(3.0)], [2.0, -1.0]])
    tags = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    # Image 1: -log sigmoid(0) = log 2; -log sigmoid(-log 3) = log 4.
    # Image 2: -log sigmoid(2) = log(1 + e^-2); -log sigmoid(-1) = log(1 + e).
    first = (math.log(2) + math.log(4)) / 2
    second = (math.log(1 + math.exp(-2)) + math.log(1 + math.e)) / 2
    loss = MultiLabelSoftMarginLoss()(logits, tags)
    assert loss.item() == pytest.approx((first + second) / 2, rel=1e-6)


def test_weight_name_and_registry():
    loss = MODELS.build(dict(type='MultiLabelSoftMarginLoss', loss_weight=2.0,
                             loss_name='loss_tags'))
    assert loss.loss_name == 'loss_tags'
    logits, tags = torch.zeros(1, 3), torch.ones(1, 3)
    assert loss(logits, tags).item() == pytest.approx(2 * math.log(2))


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match='loss_'):
        MultiLabelSoftMarginLoss(loss_name='cls')
    with pytest.raises(ValueError, match='same shape'):
        MultiLabelSoftMarginLoss()(torch.zeros(2, 3), torch.zeros(2, 4))
