"""Tests of the superpixel smoothness loss L_s = mean ||G - G_sp||^2."""
import pytest
import torch

import iaffinity_plugins  # noqa: F401
from iaffinity_plugins.models.losses.superpixel_smoothness_loss import (
    SuperpixelSmoothnessLoss, superpixel_mean)
from iaffinity_plugins.registry import MODELS


def loop_reference(gates, superpixels):
    """One superpixel at a time, plain Python over (image, id)."""
    total, count = 0.0, 0
    for n in range(gates.shape[0]):
        for region in superpixels[n].unique().tolist():
            if region < 0:
                continue
            mask = superpixels[n] == region
            values = gates[n][:, mask]  # (C, pixels)
            total = total + ((values - values.mean(1, keepdim=True))**2).sum()
            count += values.numel()
    return total / count


def test_hand_computed():
    gates = torch.tensor([[[[1., 2.], [3., 5.]]]])
    superpixels = torch.tensor([[[0, 0], [7, 7]]])
    # means 1.5 and 4: squared deviations .25 .25 1 1 -> 2.5 / 4 = 0.625
    loss = SuperpixelSmoothnessLoss(loss_weight=2.0)(gates, superpixels)
    torch.testing.assert_close(loss, torch.tensor(1.25))


def test_ignored_pixels_are_left_out():
    gates = torch.tensor([[[[1., 3.], [100., 5.]]]])
    superpixels = torch.tensor([[[4, 4], [-1, 9]]])
    # region 4: mean 2 -> 1 + 1; region 9: 0; the -1 pixel is out: 2 / 3
    loss = SuperpixelSmoothnessLoss()(gates, superpixels)
    torch.testing.assert_close(loss, torch.tensor(2 / 3))


def test_matches_loop_reference_with_any_ids():
    gen = torch.Generator().manual_seed(0)
    gates = torch.randn(2, 3, 6, 7, generator=gen)
    # huge, negative and repeated-across-images ids
    choices = torch.tensor([-1, 0, 3, 10**12, 2**40 + 1])
    superpixels = choices[torch.randint(0, 5, (2, 6, 7), generator=gen)]
    loss = SuperpixelSmoothnessLoss()(gates, superpixels)
    torch.testing.assert_close(loss, loop_reference(gates, superpixels))


def test_same_ids_in_two_images_are_different_regions():
    gates = torch.tensor([[[[0., 0.]]], [[[4., 4.]]]])
    superpixels = torch.zeros(2, 1, 2, dtype=torch.long)
    # pooling across images would give mean 2 and loss 4
    assert SuperpixelSmoothnessLoss()(gates, superpixels) == 0
    means = superpixel_mean(gates, superpixels)
    torch.testing.assert_close(means, gates)


def test_superpixels_resized_with_nearest():
    gen = torch.Generator().manual_seed(1)
    gates = torch.randn(1, 4, 5, 6, generator=gen)
    low = torch.randint(0, 4, (1, 5, 6), generator=gen)
    high = low.repeat_interleave(2, 1).repeat_interleave(2, 2)  # (1, 10, 12)
    loss = SuperpixelSmoothnessLoss()
    torch.testing.assert_close(loss(gates, high), loss(gates, low))


def test_gradcheck():
    gen = torch.Generator().manual_seed(2)
    gates = torch.randn(2, 2, 3, 4, generator=gen, dtype=torch.float64,
                        requires_grad=True)
    superpixels = torch.randint(-1, 3, (2, 3, 4), generator=gen)
    assert torch.autograd.gradcheck(
        lambda g: SuperpixelSmoothnessLoss(0.5)(g, superpixels), [gates])


def test_all_ignored_is_zero_with_a_graph():
    gates = torch.randn(1, 2, 3, 3, requires_grad=True)
    loss = SuperpixelSmoothnessLoss()(gates,
                                      torch.full((1, 3, 3), -1))
    loss.backward()
    assert loss == 0 and gates.grad.abs().sum() == 0


def test_registry_and_contract():
    loss = MODELS.build(dict(type='SuperpixelSmoothnessLoss', loss_weight=3))
    assert loss.loss_name == 'loss_smooth' and loss.loss_weight == 3
    with pytest.raises(ValueError, match='loss_'):
        SuperpixelSmoothnessLoss(loss_name='smooth')
    with pytest.raises(ValueError, match='superpixels'):
        loss(torch.zeros(1, 2, 3, 3), torch.zeros(1, 3, 3))  # float ids
