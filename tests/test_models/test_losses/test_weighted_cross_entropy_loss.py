"""The background-weighted cross-entropy against a pixel loop."""
import math

import pytest
import torch

import iaffinity_plugins  # noqa: F401
from iaffinity_plugins.registry import MODELS


def slow_reference(logits, labels, background_weight, pixel_weight=None):
    """Weighted mean of -log softmax over the labelled pixels, pixel by
    pixel."""
    total = norm = 0.0
    n, _, h, w = logits.shape
    for i in range(n):
        for y in range(h):
            for x in range(w):
                label = int(labels[i, y, x])
                if label == 255:
                    continue
                weight = background_weight if label == 0 else 1.0
                if pixel_weight is not None:
                    weight *= float(pixel_weight[i, y, x])
                probs = torch.softmax(logits[i, :, y, x], dim=0)
                total += -weight * math.log(float(probs[label]))
                norm += weight
    return total / norm if norm else 0.0


@pytest.mark.parametrize('background_weight', [1.0, 0.5, 0.0])
def test_equals_slow_reference(background_weight):
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 5, 6, generator=gen)
    labels = torch.randint(0, 4, (2, 5, 6), generator=gen)
    labels[torch.rand(2, 5, 6, generator=gen) < 0.3] = 255
    pixel_weight = torch.rand(2, 5, 6, generator=gen)
    loss = MODELS.build(dict(type='BackgroundWeightedCrossEntropyLoss',
                             background_weight=background_weight,
                             loss_weight=2.0))
    assert loss.loss_name == 'loss_ce'
    assert loss(logits, labels).item() == pytest.approx(
        2.0 * slow_reference(logits, labels, background_weight), rel=1e-5)
    assert loss(logits, labels, weight=pixel_weight).item() == pytest.approx(
        2.0 * slow_reference(logits, labels, background_weight,
                             pixel_weight), rel=1e-5)


def test_weight_one_is_mmseg_cross_entropy():
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 3, 4, 4, generator=gen)
    labels = torch.randint(0, 3, (2, 4, 4), generator=gen)
    labels[0, 0] = 255
    ours = MODELS.build(dict(type='BackgroundWeightedCrossEntropyLoss'))
    mmseg = MODELS.build(dict(type='CrossEntropyLoss', avg_non_ignore=True))
    assert ours(logits, labels).item() == pytest.approx(
        mmseg(logits, labels, ignore_index=255).item(), rel=1e-5)


def test_no_labelled_pixel_and_bad_input():
    loss = MODELS.build(dict(type='BackgroundWeightedCrossEntropyLoss',
                             background_weight=0.5))
    logits = torch.randn(1, 3, 2, 2, requires_grad=True)
    value = loss(logits, torch.full((1, 2, 2), 255))
    assert value.item() == 0.0
    value.backward()  # a gradient of zeros, not NaN
    assert torch.equal(logits.grad, torch.zeros_like(logits))
    with pytest.raises(ValueError, match='agree'):
        loss(logits, torch.zeros(1, 3, 3, dtype=torch.long))
    with pytest.raises(ValueError, match='background_weight'):
        MODELS.build(dict(type='BackgroundWeightedCrossEntropyLoss',
                          background_weight=-1.0))
