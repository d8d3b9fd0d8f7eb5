"""Banded pixel affinities and PSA's random walk, without an (hw x hw) matrix.

Shape shorthand: N batch, C feature channels, K' channels of the walked map,
h x w feature size, P neighbour offsets (half of the disc, see below),
S = 2 * radius - 1 the side of the square window holding every offset.

PSA (Ahn & Kwak, CVPR 2018) links every pixel i to the pixels j with
``|i - j|_2 < radius`` by ``a_ij = exp(-mean_c |f_i - f_j|)`` and propagates
class scores by a random walk with ``T = D^-1 A^beta`` (``A`` symmetric,
self-affinity 1, ``D`` its row sums) applied t times. Its code builds ``A`` as
a dense (hw x hw) matrix; here every quantity is a map over the pixels:

* The affinity is symmetric, so only half of the disc is stored: the P
  offsets ``d = (dy, dx)`` of :func:`neighbour_offsets` (PSA's path indices),
  as an ``(N, P, h, w)`` tensor with ``affinity[:, p, y, x] = a(i, i + d_p)``
  for ``i = (y, x)`` (0 where ``i + d_p`` leaves the image). The features of
  every pixel's neighbours come from one ``gather`` on the padded, flattened
  map (:func:`neighbours`).
* :func:`transition_weights` spreads it over the whole disc in an
  ``(N, S * S, h, w)`` window tensor: window position ``d_p`` gets
  ``a_p(i) ** beta``, the mirrored position ``-d_p`` gets
  ``a_p(i - d_p) ** beta`` (the same pair seen from its other end: the half
  map shifted by ``-d_p``, :func:`shift_each`), the centre gets 1 and
  positions outside the disc 0; then every pixel's weights are divided by
  their sum (rows of T).
* :func:`random_walk` applies T with one ``F.unfold`` per step: the unfolded
  map ``(N, K', S * S, h w)`` holds each pixel's window of neighbours, which
  is multiplied by the weights and summed over the window.

Memory is linear in h * w (``S * S * (K' + 1)`` values per pixel for the
walk, ``C * P`` for the affinities, as PSA's own gathered pairs), never
quadratic; ``T^t x`` is computed as t applications of T, which equals PSA's
``x T^(2^logt)`` for ``t = 2^logt``.
"""
from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

Offset = Tuple[int, int]


def neighbour_offsets(radius: int) -> List[Offset]:
    """Half of the neighbourhood disc of ``radius``, as PSA's path indices.

    ``(0, dx)`` for ``0 < dx < radius`` and ``(dy, dx)`` for
    ``0 < dy < radius``, ``|dx| < radius`` with ``dx^2 + dy^2 < radius^2``:
    every unordered pair of distinct pixels closer than ``radius`` appears
    exactly once (34 offsets for radius 5).

    Args:
        radius (int): >= 2.

    Returns:
        list[tuple[int, int]]: P offsets ``(dy, dx)``.
    """
    if radius < 2:
        raise ValueError(f'radius must be >= 2, got {radius}')
    offsets = [(0, dx) for dx in range(1, radius)]
    offsets += [(dy, dx) for dy in range(1, radius)
                for dx in range(-radius + 1, radius)
                if dx * dx + dy * dy < radius * radius]
    return offsets


def _window_reach(offsets: Sequence[Offset]) -> int:
    """Half side of the smallest square window holding every offset."""
    return max(max(abs(dy), abs(dx)) for dy, dx in offsets)


def _gather_offsets(padded: Tensor, offsets: Sequence[Offset], reach: int,
                    size: Sequence[int]) -> Tensor:
    """Pixel ``i + d_p`` of channel p of a padded map, for every pixel i.

    Args:
        padded (Tensor): (..., P, h + 2 reach, w + 2 reach).
        offsets (Sequence[tuple]): P offsets, |dy|, |dx| <= reach.
        reach (int): The padding.
        size (Sequence[int]): (h, w).

    Returns:
        Tensor: (..., P, h, w), one ``gather`` over the flattened map.
    """
    height, width = size
    padded_width = width + 2 * reach
    rows = torch.arange(height, device=padded.device) + reach
    cols = torch.arange(width, device=padded.device) + reach
    pixels = (rows[:, None] * padded_width + cols).flatten()
    steps = torch.tensor([dy * padded_width + dx for dy, dx in offsets],
                         device=padded.device)
    flat = padded.flatten(-2)
    index = (steps[:, None] + pixels).expand(*flat.shape[:-1], -1)
    return flat.gather(-1, index).view(*flat.shape[:-1], height, width)


def neighbours(x: Tensor, offsets: Sequence[Offset],
               fill: float = 0) -> Tensor:
    """``out[..., p, y, x] = x[..., y + dy_p, x + dx_p]``, ``fill`` outside.

    Args:
        x (Tensor): (..., h, w).
        offsets (Sequence[tuple]): P offsets ``(dy, dx)``.
        fill (float): Value where the neighbour is outside the map.

    Returns:
        Tensor: (..., P, h, w).
    """
    reach = _window_reach(offsets)
    padded = F.pad(x, (reach, ) * 4, value=fill)
    padded = padded.unsqueeze(-3).expand(*x.shape[:-2], len(offsets),
                                         *padded.shape[-2:])
    return _gather_offsets(padded, offsets, reach, x.shape[-2:])


def shift_each(x: Tensor, offsets: Sequence[Offset],
               fill: float = 0) -> Tensor:
    """Channel p shifted by its own offset: ``out[..., p, y, x] =
    x[..., p, y + dy_p, x + dx_p]``, ``fill`` outside.

    Args:
        x (Tensor): (..., P, h, w).
        offsets (Sequence[tuple]): P offsets ``(dy, dx)``.
        fill (float): Value where the source pixel is outside the map.

    Returns:
        Tensor: (..., P, h, w).
    """
    if x.shape[-3] != len(offsets):
        raise ValueError(f'{x.shape[-3]} channels but {len(offsets)} '
                         'offsets')
    reach = _window_reach(offsets)
    padded = F.pad(x, (reach, ) * 4, value=fill)
    return _gather_offsets(padded, offsets, reach, x.shape[-2:])


def pairwise_affinity(features: Tensor, offsets: Sequence[Offset]) -> Tensor:
    """PSA's affinities ``exp(-mean_c |f_i - f_{i+d}|)`` for half a disc.

    The mean over channels (PSA's code; the L1 distance divided by C) keeps
    untrained affinities away from 0 for any feature width. Memory: the
    (N, C, P, h, w) neighbour features, as PSA's gathered pairs.

    Args:
        features (Tensor): (N, C, h, w).
        offsets (Sequence[tuple]): P offsets from :func:`neighbour_offsets`.

    Returns:
        Tensor: (N, P, h, w) in (0, 1]; 0 where ``i + d_p`` is outside.
    """
    distance = (features.unsqueeze(2) -
                neighbours(features, offsets)).abs().mean(1)
    inside = neighbours(features.new_ones(features.shape[-2:]), offsets)
    return torch.exp(-distance) * inside


def transition_weights(affinity: Tensor, offsets: Sequence[Offset],
                       beta: float) -> Tensor:
    """Row-normalised random-walk weights T over the full window.

    Args:
        affinity (Tensor): (N, P, h, w) half-disc affinities in [0, 1].
        offsets (Sequence[tuple]): The P offsets of ``affinity``.
        beta (float): Power of the affinities (PSA: 8).

    Returns:
        Tensor: (N, S * S, h, w), window position ``(dy + r) * S + dx + r``
        (r the reach) holds ``T(i, i + (dy, dx))``; each pixel's weights sum
        to 1 (the centre, self-affinity 1, is always included).
    """
    if affinity.shape[1] != len(offsets):
        raise ValueError(f'affinity has {affinity.shape[1]} channels but '
                         f'{len(offsets)} offsets were given')
    reach = _window_reach(offsets)
    side = 2 * reach + 1
    n, _, height, width = affinity.shape
    powered = affinity.pow(beta)
    mirrored = [(-dy, -dx) for dy, dx in offsets]
    weights = powered.new_zeros(n, side * side, height, width)
    weights[:, reach * side + reach] = 1
    weights[:, [(dy + reach) * side + dx + reach for dy, dx in offsets]] = \
        powered
    # the pair (i, i - d) is stored at i - d, as a(i - d, i)
    weights[:, [(dy + reach) * side + dx + reach for dy, dx in mirrored]] = \
        shift_each(powered, mirrored)
    return weights / weights.sum(1, keepdim=True)


def apply_transition(x: Tensor, weights: Tensor) -> Tensor:
    """One random-walk step ``(T x)(i) = sum_j T(i, j) x(j)``.

    Args:
        x (Tensor): (N, K', h, w).
        weights (Tensor): (N, S * S, h, w) from :func:`transition_weights`.

    Returns:
        Tensor: (N, K', h, w).
    """
    n, channels, height, width = x.shape
    side = int(round(weights.shape[1]**0.5))
    # (N, K' * S * S, h * w): the S x S window of every pixel, zero-padded
    windows = F.unfold(x, side, padding=side // 2)
    windows = windows.view(n, channels, side * side, height, width)
    return (windows * weights.unsqueeze(1)).sum(2)


def random_walk(x: Tensor, affinity: Tensor, offsets: Sequence[Offset],
                beta: float, num_iters: int) -> Tensor:
    """``T^num_iters x`` with PSA's transition ``T = D^-1 A^beta``.

    Args:
        x (Tensor): (N, K', h, w) map to propagate (e.g. class scores).
        affinity (Tensor): (N, P, h, w) half-disc affinities.
        offsets (Sequence[tuple]): The P offsets of ``affinity``.
        beta (float): Power of the affinities.
        num_iters (int): Steps t >= 0 (PSA: 2^8 = 256).

    Returns:
        Tensor: (N, K', h, w). T is row-stochastic, so per-pixel class
        distributions stay distributions.
    """
    if x.shape[0] != affinity.shape[0] or x.shape[2:] != affinity.shape[2:]:
        raise ValueError(f'map {tuple(x.shape)} and affinity '
                         f'{tuple(affinity.shape)} differ in batch or size')
    if num_iters < 0:
        raise ValueError(f'num_iters must be >= 0, got {num_iters}')
    weights = transition_weights(affinity, offsets, beta)
    for _ in range(num_iters):
        x = apply_transition(x, weights)
    return x
