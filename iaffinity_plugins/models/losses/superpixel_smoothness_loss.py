"""Region smoothness loss L_s = mean ||G - G_sp||^2 (eq. (8)).

A good affinity has similar values inside an object region, so the refined
map is smooth inside regions and changes at their boundaries. G_sp replaces
every gate/affinity value by its mean over the superpixel the pixel lies in.

Shape shorthand: N batch, C gate/affinity channels, h x w gate size,
H x W superpixel map size.
"""
from typing import Sequence

import torch
from torch import Tensor

from iaffinity_plugins.registry import MODELS
from .named_loss import NamedLoss


def resize_nearest_ids(ids: Tensor, size: Sequence[int]) -> Tensor:
    """Nearest resize of an integer id map, exact for any int64 id.

    Uses PyTorch's 'nearest' rule (source index floor(dst * in / out)) with
    integer arithmetic, since a float round trip would corrupt ids > 2^24.

    Args:
        ids (Tensor): (N, H, W) integer ids.
        size (Sequence[int]): (h, w).

    Returns:
        Tensor: (N, h, w).
    """
    height, width = ids.shape[-2:]
    rows = torch.arange(size[0], device=ids.device) * height // size[0]
    cols = torch.arange(size[1], device=ids.device) * width // size[1]
    return ids[:, rows][:, :, cols]


def superpixel_mean(values: Tensor, superpixels: Tensor) -> Tensor:
    """Average each channel of ``values`` inside every superpixel.

    Args:
        values (Tensor): (N, C, h, w).
        superpixels (Tensor): (N, h, w) integer ids, per image, any values;
            id < 0 = ignored (its pixels keep their own value).

    Returns:
        Tensor: (N, C, h, w) per-superpixel means G_sp.
    """
    n, c = values.shape[:2]
    flat = values.permute(0, 2, 3, 1).reshape(-1, c)  # (N h w, C)
    ids = superpixels.reshape(n, -1)
    valid = (ids >= 0).reshape(-1)
    # Ids are per image: pair each with its image index, then compact the
    # pairs to 0..R-1 so one scatter covers the whole batch.
    image = torch.arange(n, device=ids.device).repeat_interleave(ids.shape[1])
    _, region = torch.unique(
        torch.stack([image, ids.reshape(-1)])[:, valid], dim=1,
        return_inverse=True)
    sums = flat.new_zeros(int(region.max()) + 1 if region.numel() else 0, c)
    sums.index_add_(0, region, flat[valid])
    counts = torch.bincount(region, minlength=sums.shape[0]).to(flat)
    means = flat.clone()
    means[valid] = (sums / counts[:, None])[region]
    return means.view(n, *values.shape[2:], c).permute(0, 3, 1, 2)


@MODELS.register_module()
class SuperpixelSmoothnessLoss(NamedLoss):
    """L_s = loss_weight * mean over pixels and channels of (G - G_sp)^2.

    Works on any (N, C, h, w) gate or affinity tensor. Superpixel maps of
    another size are resized to (h, w) with nearest; pixels with id < 0 are
    left out of the means and of the average.

    Args:
        loss_weight (float): lambda, the weight of L_s.
        loss_name (str): key in the loss dict, must start with 'loss_'.
    """

    def __init__(self, loss_weight: float = 1.0,
                 loss_name: str = 'loss_smooth'):
        super().__init__(loss_weight, loss_name)

    def forward(self, gates: Tensor, superpixels: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            gates (Tensor): (N, C, h, w) gates/affinities G.
            superpixels (Tensor): (N, H, W) integer superpixel ids.

        Returns:
            Tensor: scalar loss (0 when no pixel has a superpixel).
        """
        if gates.dim() != 4 or superpixels.dim() != 3 or \
                superpixels.shape[0] != gates.shape[0] or \
                superpixels.dtype.is_floating_point:
            raise ValueError(
                f'{type(self).__name__}: expected gates (N, C, h, w) and '
                f'integer superpixels (N, H, W), got {tuple(gates.shape)} and '
                f'{superpixels.dtype} {tuple(superpixels.shape)}')
        if superpixels.shape[1:] != gates.shape[2:]:
            superpixels = resize_nearest_ids(superpixels, gates.shape[2:])
        valid = (superpixels >= 0).unsqueeze(1)
        # ignored pixels equal their "mean", so they add exactly 0 and only
        # the count of valid elements enters the average
        squared = (gates - superpixel_mean(gates, superpixels))**2
        count = valid.sum() * gates.shape[1]
        return self.loss_weight * squared.sum() / count.clamp_min(1)
