"""The banded affinities and random walk against dense (hw x hw) references."""
import math

import pytest
import torch

from iaffinity_plugins.models.ops.banded_affinity import (
    neighbour_offsets, neighbours, pairwise_affinity, random_walk, shift_each)


def pixel_pairs(height, width, radius):
    """Every unordered pair (i, j) of distinct pixels closer than radius."""
    pixels = [(y, x) for y in range(height) for x in range(width)]
    for i, (y0, x0) in enumerate(pixels):
        for j, (y1, x1) in enumerate(pixels):
            if i < j and (y1 - y0)**2 + (x1 - x0)**2 < radius**2:
                yield i, j


def dense_affinity(affinity, offsets):
    """(hw x hw) symmetric A with A_ii = 1, from banded (1, P, h, w)."""
    _, _, height, width = affinity.shape
    dense = torch.eye(height * width, dtype=affinity.dtype)
    for p, (dy, dx) in enumerate(offsets):
        for y in range(height):
            for x in range(width):
                if 0 <= y + dy < height and 0 <= x + dx < width:
                    i, j = y * width + x, (y + dy) * width + x + dx
                    dense[i, j] = dense[j, i] = affinity[0, p, y, x]
    return dense


@pytest.mark.parametrize('radius', [2, 3, 5])
def test_offsets_cover_each_pair_once(radius):
    offsets = neighbour_offsets(radius)
    assert len(set(offsets)) == len(offsets)
    assert not {(-dy, -dx) for dy, dx in offsets} & set(offsets)
    # the disc without its centre is the offsets and their mirrors
    disc = {(dy, dx) for dy in range(-radius, radius + 1)
            for dx in range(-radius, radius + 1)
            if 0 < dy * dy + dx * dx < radius * radius}
    assert disc == set(offsets) | {(-dy, -dx) for dy, dx in offsets}
    assert len(neighbour_offsets(5)) == 34  # PSA's path indices


def test_neighbours_and_shift_each():
    offsets = [(0, 0), (1, -2), (-3, 1), (6, 0)]
    x = torch.arange(40).view(2, 4, 5)
    gathered = neighbours(x, offsets, fill=-1)  # integer maps work too
    assert gathered.shape == (2, 4, 4, 5)
    shifted = shift_each(x.float()[:, None].expand(2, 4, 4, 5), offsets,
                         fill=-1)
    torch.testing.assert_close(shifted, gathered.float())
    for p, (dy, dx) in enumerate(offsets):
        for y in range(4):
            for c in range(5):
                inside = 0 <= y + dy < 4 and 0 <= c + dx < 5
                expected = x[:, y + dy, c + dx] if inside else \
                    torch.full((2, ), -1)
                assert torch.equal(gathered[:, p, y, c], expected)
    with pytest.raises(ValueError, match='offsets'):
        shift_each(x.float(), offsets)


def test_pairwise_affinity_matches_every_pair():
    features = torch.randn(1, 3, 4, 6, dtype=torch.float64)
    offsets = neighbour_offsets(3)
    dense = dense_affinity(pairwise_affinity(features, offsets), offsets)
    flat = features[0].flatten(1).T  # (hw, C)
    pairs = list(pixel_pairs(4, 6, 3))
    for i, j in pairs:
        expected = math.exp(-(flat[i] - flat[j]).abs().mean())
        assert dense[i, j] == pytest.approx(expected, rel=1e-12)
    # pairs outside the radius stay 0
    assert (dense > 0).sum() == 2 * len(pairs) + 24


@pytest.mark.parametrize('radius,beta,num_iters', [
    (2, 1.0, 1), (3, 8.0, 1), (3, 8.0, 5), (5, 2.0, 16), (5, 8.0, 40)])
def test_random_walk_equals_dense_reference(radius, beta, num_iters):
    """T^t x with T = D^-1 A^beta, A dense, self-affinity 1 (PSA's code)."""
    height, width, channels = 5, 7, 3
    offsets = neighbour_offsets(radius)
    # small feature distances: affinities ~0.8, so even a^8 moves mass
    features = 0.2 * torch.randn(1, 4, height, width, dtype=torch.float64)
    affinity = pairwise_affinity(features, offsets)
    x = torch.rand(1, channels, height, width, dtype=torch.float64)

    walked = random_walk(x, affinity, offsets, beta, num_iters)

    powered = dense_affinity(affinity, offsets).pow(beta)
    transition = powered / powered.sum(1, keepdim=True)
    expected = torch.linalg.matrix_power(transition, num_iters) @ \
        x[0].flatten(1).T
    torch.testing.assert_close(walked[0].flatten(1).T, expected, rtol=1e-10,
                               atol=1e-12)
    assert (walked - x).abs().max() > 1e-2  # the walk is not the identity


def test_random_walk_keeps_distributions_and_batches():
    offsets = neighbour_offsets(3)
    affinity = pairwise_affinity(torch.randn(2, 4, 6, 5), offsets)
    probs = torch.randn(2, 4, 6, 5).softmax(1)
    walked = random_walk(probs, affinity, offsets, 8.0, 10)
    torch.testing.assert_close(walked.sum(1), torch.ones(2, 6, 5))
    torch.testing.assert_close(walked[1:], random_walk(
        probs[1:], affinity[1:], offsets, 8.0, 10))
    torch.testing.assert_close(
        random_walk(probs, affinity, offsets, 8.0, 0), probs)
    with pytest.raises(ValueError, match='differ'):
        random_walk(probs[:, :, :5], affinity, offsets, 8.0, 1)
