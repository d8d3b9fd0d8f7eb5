"""A tagged object never vanishes from a label map.

Image-level tags are the one thing a weakly supervised loop knows for sure.
A unary net drops whole objects (on the photo demo f_0 loses 18 % of the
faces, the CAM seeds 7 %), and a label map that calls a tagged object
background teaches the next net that the object is background: the loss
compounds over the steps (docs/benchmarks.md). :func:`restore_lost_tags`
gives every tagged class that a map lost the pixels a fallback map (the
seeds, which keep every tag) gives it.
"""
import os.path as osp
from typing import List, Tuple, Union

import numpy as np
import torch

from .label_io import read_label
from .scores import allowed_classes


def restore_lost_tags(labels: np.ndarray,
                      tags: Union[np.ndarray, torch.Tensor],
                      fallback: np.ndarray) -> Tuple[np.ndarray, List[int]]:
    """``labels`` with each lost tagged class painted from ``fallback``.

    Args:
        labels (np.ndarray): (H, W) uint8 label map (0 background, 255
            unknown).
        tags (np.ndarray | Tensor): (K-1,) multi-hot foreground tags: tag
            ``k`` is class ``k + 1``.
        fallback (np.ndarray): (H, W) uint8 label map of the same image.

    Returns:
        tuple: the label map (a copy when a class was restored, ``labels``
        itself otherwise) and the restored classes.

    Raises:
        ValueError: ``fallback`` has another size than ``labels``.
    """
    if fallback.shape != labels.shape:
        raise ValueError(f'fallback map {fallback.shape} and label map '
                         f'{labels.shape} differ in size')
    tagged = np.flatnonzero(allowed_classes(tags)[1:]) + 1
    present = np.bincount(labels.reshape(-1), minlength=256) > 0
    lost = [int(c) for c in tagged if not present[c]]
    if not lost:
        return labels, lost
    restored = labels.copy()
    for c in lost:
        restored[fallback == c] = c
    return restored, lost


def restore_lost_tags_from(labels: np.ndarray,
                           tags: Union[np.ndarray, torch.Tensor],
                           fallback_dir: str,
                           img_id: str) -> Tuple[np.ndarray, List[int]]:
    """:func:`restore_lost_tags` with ``fallback_dir/<img_id>.png``.

    Raises:
        FileNotFoundError: the fallback map is missing.
        ValueError: it cannot be read or has another size, naming it.
    """
    path = osp.join(fallback_dir, f'{img_id}.png')
    try:
        return restore_lost_tags(labels, tags, read_label(path))
    except ValueError as error:
        raise ValueError(f'{path}: {error}') from error
