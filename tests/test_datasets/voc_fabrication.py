"""Fabricated VOC-layout folders for the data set tests (helpers)."""
import os
from typing import Dict, Optional, Sequence

import numpy as np
from PIL import Image

from iaffinity_plugins.labels.label_io import write_label
from iaffinity_plugins.registry import DATASETS

CLASSES = ('background', 'cat', 'dog', 'traffic light')


def fabricate_voc_layout(root,
                         masks: Dict[str, Optional[np.ndarray]],
                         classes: Optional[Sequence[str]] = CLASSES,
                         split: str = 'train',
                         seg_dir: str = 'SegmentationClass',
                         img_dir: str = 'JPEGImages') -> str:
    """Write <img_dir>/, <seg_dir>/, the split file and classes.txt.

    ``masks[img_id]`` is the (H, W) mask, or None for an image without one
    (then a 12 x 16 image is written).
    """
    root = str(root)
    rng = np.random.default_rng(0)
    for sub in (img_dir, seg_dir, 'ImageSets/Segmentation'):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    for img_id, mask in masks.items():
        shape = (12, 16) if mask is None else mask.shape
        image = rng.integers(0, 256, size=(*shape, 3), dtype=np.uint8)
        Image.fromarray(image).save(
            os.path.join(root, img_dir, img_id + '.jpg'))
        if mask is not None:
            write_label(os.path.join(root, seg_dir, img_id + '.png'), mask)
    with open(os.path.join(root, 'ImageSets/Segmentation', split + '.txt'),
              'a') as f:
        f.write(''.join(i + '\n' for i in masks))
    if classes is not None:
        with open(os.path.join(root, 'classes.txt'), 'w') as f:
            f.write(''.join(c + '\n' for c in classes))
    return root


def mask_with(*values: int, shape=(12, 16)) -> np.ndarray:
    """A mask whose vertical bands hold ``values`` (band 0 stays 0)."""
    mask = np.zeros(shape, np.uint8)
    for i, value in enumerate(values):
        mask[:, (i + 1) * 3:(i + 2) * 3] = value
    return mask


def build_voc_layout(root, **kwargs):
    """A ``VOCLayoutDataset`` over the folder ``root``."""
    return DATASETS.build(
        dict(type='VOCLayoutDataset', data_root=str(root), **kwargs))
