"""AffinityNet's head (PSA, Ahn & Kwak 2018): backbone features -> pixel
affinities -> random-walk refinement of class probabilities.

Shape shorthand: N batch, K' channels of a propagated map (K classes for the
unary probabilities), H x W input size, h x w feature size (the stride of the
first selected backbone level, 8 in PSA), C = sum(level_channels) affinity
feature channels, P half-disc neighbour offsets (34 for radius 5).

Like PSA's AffinityNet, each selected backbone level is reduced by a 1x1
conv (+ norm + ELU), the levels are concatenated (resized to the first one's
size) and mixed by a last 1x1 conv + ELU into the affinity features f. The
affinities ``a_ij = exp(-mean_c |f_i - f_j|)`` for ``|i - j| < radius`` are
stored banded, ``(N, P, h, w)`` (:mod:`..ops.banded_affinity`).

The refinement operator lifts the walk at (h, w) to the input size as a
residual, ``G_t a = a + up(T^t down(a) - down(a))`` (area down, bilinear
up), like :class:`~iaffinity_plugins.models.heads.SPNHead`: an identity walk
leaves the full-resolution unary untouched and only the change the walk
makes is interpolated (PSA upsamples the walked map itself, its input being
a low-resolution CAM). :meth:`AffinityHead.refine` uses ``t = num_iters``;
the energy J uses one step (``t = 1``).
"""
from typing import List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor

from iaffinity_plugins.registry import MODELS
from ..ops.banded_affinity import (neighbour_offsets, pairwise_affinity,
                                   random_walk)


@MODELS.register_module()
class AffinityHead(BaseModule):
    """Affinity features and PSA's random walk on them.

    Args:
        in_channels (Sequence[int]): Channels of the selected backbone levels.
        in_index (Sequence[int]): Indices of those levels in the backbone's
            outputs; the first sets the affinity resolution (h, w).
        level_channels (Sequence[int]): Channels each level is reduced to
            (PSA: 64, 128, 256); C is their sum.
        radius (int): Pairs closer than this (in feature pixels) get an
            affinity (PSA: 5 at stride 8).
        beta (float): Power of the affinities in the transition (PSA: 8).
        num_iters (int): Random-walk steps t of :meth:`refine` (PSA: 2^8).
        norm_cfg (dict, optional): Norm layer of the level reductions (PSA:
            GroupNorm).
        eps (float): Floor of the refined probabilities before the log.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 in_index: Sequence[int],
                 level_channels: Sequence[int],
                 radius: int = 5,
                 beta: float = 8.0,
                 num_iters: int = 256,
                 norm_cfg: Optional[dict] = dict(type='GN', num_groups=4),
                 eps: float = 1e-6,
                 init_cfg: Optional[Union[dict, List[dict]]] = None):
        super().__init__(init_cfg)
        if not len(in_channels) == len(in_index) == len(level_channels) > 0:
            raise ValueError(
                'AffinityHead: in_channels, in_index and level_channels need '
                f'one entry per backbone level, got {tuple(in_channels)}, '
                f'{tuple(in_index)} and {tuple(level_channels)}')
        if radius < 2:
            raise ValueError(f'AffinityHead: radius must be >= 2 (2: the '
                             f'8-neighbours), got {radius}')
        if num_iters < 0:
            raise ValueError(f'AffinityHead: num_iters must be >= 0, got '
                             f'{num_iters}')
        self.in_index = tuple(in_index)
        self.offsets = neighbour_offsets(radius)
        self.beta = beta
        self.num_iters = num_iters
        self.eps = eps
        act_cfg = dict(type='ELU')
        self.reduce = torch.nn.ModuleList(
            ConvModule(cin, cout, 1, norm_cfg=norm_cfg, act_cfg=act_cfg)
            for cin, cout in zip(in_channels, level_channels))
        channels = sum(level_channels)
        self.mix = ConvModule(channels, channels, 1, bias=False,
                              act_cfg=act_cfg)

    def features(self, inputs: Sequence[Tensor]) -> Tensor:
        """Affinity features (N, C, h, w) from the backbone's outputs."""
        levels = [inputs[i] for i in self.in_index]
        size = levels[0].shape[2:]
        reduced = [
            F.interpolate(reduce(level), size=size, mode='bilinear',
                          align_corners=False)
            if level.shape[2:] != size else reduce(level)
            for reduce, level in zip(self.reduce, levels)
        ]
        return self.mix(torch.cat(reduced, 1))

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        """Half-disc affinities (N, P, h, w) from the backbone's outputs."""
        return pairwise_affinity(self.features(inputs), self.offsets)

    def propagate(self, a: Tensor, affinity: Tensor,
                  num_iters: int) -> Tensor:
        """``G_t a = a + up(T^t down(a) - down(a))`` for any map a.

        Args:
            a (Tensor): (N, K', H, W).
            affinity (Tensor): (N, P, h, w) from :meth:`forward`.
            num_iters (int): Walk steps t.

        Returns:
            Tensor: (N, K', H, W).
        """
        low = F.interpolate(a, size=affinity.shape[2:], mode='area')
        change = random_walk(low, affinity, self.offsets, self.beta,
                             num_iters) - low
        return a + F.interpolate(change, size=a.shape[2:], mode='bilinear',
                                 align_corners=False)

    def refine(self, unary_probs: Tensor, affinity: Tensor) -> Tensor:
        """Refined logits (N, K, H, W): log of ``G_t alpha_u``, t = num_iters.

        T is row-stochastic, so ``G_t alpha_u`` sums to 1 over classes; the
        bilinear lift may dip below 0 by a little, hence the floor ``eps``
        and the renormalisation.
        """
        refined = self.propagate(unary_probs, affinity,
                                 self.num_iters).clamp_min(self.eps)
        return (refined / refined.sum(1, keepdim=True)).log()
