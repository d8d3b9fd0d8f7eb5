"""Unary probabilities with their object boundaries moved, for training g_t.

Shapes: N batch, K classes (background first), H x W input size.

A propagation net learns only from input that is worse than its target
(issue #22): the gate gradient dL/dh (h_prev - x) vanishes where the unary
already agrees with the labels, which it does wherever it was trained on
them. CascadePSP (hkchengrex/CascadePSP ``dataset/online_dataset.py``)
trains its refiner on the target degraded by dilated and eroded
boundaries; here the same error is made on the unary's own output:
every object channel is grown (max-pooled) or shrunk (min-pooled) by a
random radius, the background channel the other way, and the result is
renormalised. An object that spills onto the background or misses its
extent is the unary's real error on photographs (docs/benchmarks.md); the
labels stay those of the mining, so the pairwise net learns to carry a
boundary back to where the image puts it. At inference the input is the
unperturbed alpha_u, as in the paper.
"""
import torch
import torch.nn.functional as F
from torch import Tensor


def _dilate(maps: Tensor, radius: int) -> Tensor:
    """Max over a (2 radius + 1)^2 window, same size."""
    return F.max_pool2d(maps, 2 * radius + 1, stride=1, padding=radius)


def perturb_boundaries(probs: Tensor, max_radius: int,
                       prob: float = 1.0, grow_prob: float = 0.5) -> Tensor:
    """Grow or shrink the objects of class probability maps.

    For each image, with probability ``prob``: a radius r uniform in
    1 .. ``max_radius`` and a direction; "grow" (probability
    ``grow_prob``) dilates every object channel (1 ..) and erodes the
    background channel (0) by r pixels, "shrink" the reverse; the
    channels are then renormalised to sum 1. Classes with probability 0
    everywhere (absent tags) stay 0.

    Args:
        probs (Tensor): (N, K, H, W) class probabilities.
        max_radius (int): Largest radius in pixels (>= 1).
        prob (float): Probability that an image is perturbed.
        grow_prob (float): Probability that a perturbed image's objects
            grow rather than shrink.

    Returns:
        Tensor: (N, K, H, W) probabilities, a new tensor.

    Raises:
        ValueError: ``max_radius`` < 1, ``prob`` or ``grow_prob`` outside
            [0, 1].
    """
    if max_radius < 1:
        raise ValueError(f'max_radius must be >= 1, got {max_radius}')
    for name, value in (('prob', prob), ('grow_prob', grow_prob)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f'{name} must be in [0, 1], got {value}')
    out = probs.clone()
    perturbed = torch.rand(probs.shape[0]) < prob
    radii = torch.randint(1, max_radius + 1, (probs.shape[0], ))
    grow = torch.rand(probs.shape[0]) < grow_prob
    for i in perturbed.nonzero().flatten().tolist():
        r = int(radii[i])
        maps = probs[i:i + 1]
        dilated = _dilate(maps, r)
        eroded = -_dilate(-maps, r)
        objects, background = ((dilated, eroded) if grow[i] else
                               (eroded, dilated))
        moved = torch.cat([background[:, :1], objects[:, 1:]], dim=1)
        out[i] = (moved / moved.sum(1, keepdim=True).clamp_min(1e-12))[0]
    return out
