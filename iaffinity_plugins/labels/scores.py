"""Unary class scores alpha_u for label making, restricted to the image tags.

Shapes: N batch, K classes including background (index 0), K-1 foreground
classes, H x W input size.

When the EM loop turns network outputs into labels, only the image's tagged
classes and background are allowed (the paper, Sec. 3.1). The scores are
recomputed on demand from the unary checkpoint rather than stored: at VOC
scale 10,582 x 21 x H x W float16 maps would take ~80 GB.
"""
from typing import List, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from mmseg.structures import SegDataSample
from torch import Tensor


def restrict_to_tags(logits: Tensor, tags: Tensor) -> Tensor:
    """Set the logits of foreground classes absent from the tags to -inf.

    Args:
        logits (Tensor): (N, K, H, W) class logits, background first.
        tags (Tensor): (N, K-1) multi-hot foreground tags.

    Returns:
        Tensor: (N, K, H, W) logits; background is always kept, so a softmax
        over them is finite and gives exactly 0 to absent classes.
    """
    tags = torch.as_tensor(tags, device=logits.device)
    if logits.dim() != 4 or tags.shape != (logits.shape[0],
                                           logits.shape[1] - 1):
        raise ValueError(f'logits (N, K, H, W) = {tuple(logits.shape)} need '
                         f'tags (N, K-1), got {tuple(tags.shape)}')
    background = torch.ones_like(tags[:, :1], dtype=torch.bool)
    allowed = torch.cat([background, tags > 0.5], dim=1)
    return logits.masked_fill(~allowed[:, :, None, None], float('-inf'))


def allowed_classes(tags: Union[np.ndarray, torch.Tensor]) -> np.ndarray:
    """Background plus the image's tagged foreground classes.

    Args:
        tags (np.ndarray | Tensor): (K-1,) multi-hot foreground tags.

    Returns:
        np.ndarray: (K,) bool.
    """
    tags = torch.as_tensor(tags).detach().cpu().numpy()
    return np.concatenate([[True], tags.reshape(-1) > 0])


def stack_tags(data_samples: List[SegDataSample],
               num_classes: Optional[int] = None) -> Tensor:
    """Float (N, K-1) tags from each data sample's ``metainfo['tags']``.

    Args:
        data_samples (list[SegDataSample]): One per image.
        num_classes (int, optional): Expected K-1, checked when given.

    Raises:
        KeyError / ValueError: naming the image whose tags are missing or
        of the wrong shape.
    """
    tags = []
    for sample in data_samples:
        image = sample.metainfo.get('img_path',
                                    sample.metainfo.get('img_id', '?'))
        if 'tags' not in sample.metainfo:
            raise KeyError(f"data sample of {image} has no metainfo['tags']")
        tag = torch.as_tensor(sample.metainfo['tags'], dtype=torch.float32)
        if tag.dim() != 1 or (num_classes is not None
                              and tag.shape[0] != num_classes):
            raise ValueError(f'tags of {image} have shape '
                             f'{tuple(tag.shape)}, expected ({num_classes},)')
        tags.append(tag)
    return torch.stack(tags)


def resize_short_edge(inputs: Tensor, short_edge: Optional[int]) -> Tensor:
    """(N, C, H, W) images bilinearly resized to a short edge of
    ``short_edge`` (aspect kept); unchanged when None or already there."""
    if short_edge is not None and short_edge < 1:
        raise ValueError(f'short_edge must be a positive number of pixels, '
                         f'got {short_edge}')
    if short_edge is None or min(inputs.shape[2:]) == short_edge:
        return inputs
    scale = short_edge / min(inputs.shape[2:])
    size = [max(1, round(side * scale)) for side in inputs.shape[2:]]
    return F.interpolate(inputs, size=size, mode='bilinear',
                         align_corners=False)


@torch.no_grad()
def unary_scores(segmentor: torch.nn.Module,
                 inputs: Tensor,
                 data_samples: List[SegDataSample],
                 scales: Sequence[float] = (1.0, ),
                 flip: bool = False) -> Tensor:
    """Tag-restricted class probabilities of a segmentor at input size.

    For each scale (bilinear, align_corners=False) and, with ``flip``, its
    mirror image: ``segmentor.encode_decode`` logits, resized back to
    (H, W), restricted to the tags, softmax; the probabilities are averaged.

    Args:
        segmentor: An mmseg segmentor (``encode_decode(inputs, metas)``).
        inputs (Tensor): (N, 3, H, W) normalised images.
        data_samples (list[SegDataSample]): One per image, with
            ``metainfo['tags']`` ((K-1,) multi-hot).
        scales (Sequence[float]): Input scales. Default: (1.0,).
        flip (bool): Also average the horizontally flipped input.

    Returns:
        Tensor: (N, K, H, W) probabilities; absent classes are exactly 0.
    """
    size = inputs.shape[2:]
    tags = stack_tags(data_samples).to(inputs.device)
    total = 0
    views = 0
    for scale in scales:
        scaled = inputs if scale == 1.0 else F.interpolate(
            inputs, scale_factor=scale, mode='bilinear', align_corners=False)
        # encode_decode resizes its output to the meta's img_shape: give it
        # the scaled size, then bring the logits back to (H, W) ourselves.
        shape = tuple(scaled.shape[2:])
        metas = [{**sample.metainfo, 'img_shape': shape, 'pad_shape': shape}
                 for sample in data_samples]
        for flipped in ((False, True) if flip else (False, )):
            view = scaled.flip(-1) if flipped else scaled
            logits = segmentor.encode_decode(view, metas)
            if flipped:
                logits = logits.flip(-1)
            logits = F.interpolate(
                logits, size=size, mode='bilinear', align_corners=False)
            total = total + restrict_to_tags(logits, tags).softmax(dim=1)
            views += 1
    return total / views
