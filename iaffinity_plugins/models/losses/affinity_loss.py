"""PSA's affinity loss (Ahn & Kwak, CVPR 2018, eq. (4)-(7)).

Pairs (i, i + d) within the radius are labelled from a label map at the
affinity resolution: same foreground class -> positive foreground pair, both
background -> positive background pair, different classes -> negative pair,
any unknown (255) pixel or a partner outside the map -> ignored. With ``a``
the predicted affinity::

    L = (L_fg+ + L_bg+) / 4 + L- / 2
    L_fg+ = mean over fg pairs of -log a,  L_bg+ likewise,
    L-    = mean over negative pairs of -log(1 - a)

(PSA's ``L_fg+ + L_bg+ + 2 L-`` with its code's 1/4 normalisation), so each
of the three kinds of pair counts the same whatever their numbers.

Shape shorthand: N batch, P neighbour offsets, h x w affinity size.
"""
from typing import Dict, Sequence

import torch
from torch import Tensor

from iaffinity_plugins.registry import MODELS
from .named_loss import NamedLoss
from ..ops.banded_affinity import Offset, neighbours

IGNORE_INDEX = 255


def affinity_pair_labels(labels: Tensor, offsets: Sequence[Offset],
                         ignore_index: int = IGNORE_INDEX
                         ) -> Dict[str, Tensor]:
    """Which pairs ``(i, i + d_p)`` are fg-positive, bg-positive, negative.

    Args:
        labels (Tensor): (N, h, w) integer labels, background 0,
            ``ignore_index`` = unknown.
        offsets (Sequence[tuple]): The P offsets of the affinities.
        ignore_index (int): Label of unknown pixels.

    Returns:
        dict: ``fg``, ``bg``, ``neg`` boolean masks of shape (N, P, h, w);
        pairs in none of them are ignored.
    """
    if labels.dim() != 3 or labels.dtype.is_floating_point:
        raise ValueError('labels must be an integer (N, h, w) map, got '
                         f'{labels.dtype} {tuple(labels.shape)}')
    labels = labels.long()
    partner = neighbours(labels, offsets, fill=ignore_index)
    centre = labels.unsqueeze(1)
    known = (centre != ignore_index) & (partner != ignore_index)
    same = known & (centre == partner)
    return dict(fg=same & (centre != 0), bg=same & (centre == 0),
                neg=known & (centre != partner))


@MODELS.register_module()
class AffinityLoss(NamedLoss):
    """PSA's balanced affinity loss on half-disc affinities.

    Args:
        loss_weight (float): Weight of the loss.
        eps (float): Added inside the logs (PSA: 1e-5).
        loss_name (str): Key in the loss dict, must start with 'loss_'.
    """

    def __init__(self, loss_weight: float = 1.0, eps: float = 1e-5,
                 loss_name: str = 'loss_affinity'):
        super().__init__(loss_weight, loss_name)
        self.eps = eps

    def forward(self, affinity: Tensor, labels: Tensor,
                offsets: Sequence[Offset],
                ignore_index: int = IGNORE_INDEX) -> Tensor:
        """Compute the loss.

        Args:
            affinity (Tensor): (N, P, h, w) affinities in [0, 1].
            labels (Tensor): (N, h, w) integer labels at the affinity size.
            offsets (Sequence[tuple]): The P offsets of ``affinity``.
            ignore_index (int): Label of unknown pixels.

        Returns:
            Tensor: Scalar; a kind of pair absent from the batch adds 0.
        """
        if affinity.dim() != 4 or affinity.shape[1] != len(offsets) or \
                labels.shape != (affinity.shape[0], *affinity.shape[2:]):
            raise ValueError(
                f'{type(self).__name__}: expected affinity '
                f'(N, P={len(offsets)}, h, w) and labels (N, h, w), got '
                f'{tuple(affinity.shape)} and {tuple(labels.shape)}')
        pairs = affinity_pair_labels(labels, offsets, ignore_index)
        positive = -torch.log(affinity + self.eps)
        negative = -torch.log(1 + self.eps - affinity)

        def mean(values: Tensor, mask: Tensor) -> Tensor:
            return (values * mask).sum() / mask.sum().clamp_min(1)

        loss = (mean(positive, pairs['fg']) + mean(positive, pairs['bg'])) / 4
        loss = loss + mean(negative, pairs['neg']) / 2
        return self.loss_weight * loss
