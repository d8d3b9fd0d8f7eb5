"""Image and label loading whose errors name the file.

mmcv's ``LoadImageFromFile`` reports an undecodable image with an
``assert`` (gone under ``python -O``) and an empty file with a bare OpenCV
error that does not name it; mmseg's ``LoadAnnotations`` fails on a corrupt
PNG with ``'NoneType' object has no attribute 'squeeze'``. These subclasses
keep the loading code and turn any decoding failure into an ``OSError``
naming the file. A label map whose size differs from its image file (the
image as loaded, ``ori_shape``, also where a test pipeline resized it before
the mask is loaded, as mmseg's do) is refused with both files named: random
crops would otherwise cut different regions of the two, or fail later in the
loss. So is a label
value outside the item's classes (K = len(tags) + 1): mmseg's IoU metric
would silently drop it, and the loss fail without naming the file.
"""
from contextlib import contextmanager
from typing import Iterator, Optional

import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmseg.datasets.transforms import LoadAnnotations

from iaffinity_plugins.labels.label_io import (IGNORE_INDEX,
                                               check_label_shape,
                                               check_label_values)
from iaffinity_plugins.registry import TRANSFORMS


@contextmanager
def _naming_file(kind: str, path: str) -> Iterator[None]:
    """Re-raise decoding errors as ``OSError`` naming ``path``.

    ``FileNotFoundError`` already names the file and passes unchanged.
    """
    try:
        yield
    except FileNotFoundError:
        raise
    except Exception as error:
        raise OSError(f'cannot load {kind} {path}: '
                      f'{type(error).__name__}: {error}') from error


@TRANSFORMS.register_module()
class LoadImageWithCheck(LoadImageFromFile):
    """``LoadImageFromFile`` whose failures name the image file."""

    def transform(self, results: dict) -> Optional[dict]:
        with _naming_file('image', results['img_path']):
            return super().transform(results)


@TRANSFORMS.register_module()
class LoadAnnotationsWithCheck(LoadAnnotations):
    """mmseg's ``LoadAnnotations`` whose failures name the label file.

    Raises:
        OSError: the label map cannot be decoded.
        ValueError: its (H, W) differs from the image's as loaded
            (``ori_shape``: before any resize), or it holds
            a value that is neither one of the item's K classes nor 255
            (K from the item's ``tags``, (K-1,); not checked without them).
    """

    def _load_seg_map(self, results: dict) -> None:
        path = results['seg_map_path']
        with _naming_file('label map', path):
            super()._load_seg_map(results)
        label = results['gt_seg_map']
        if 'img' in results:
            # The image as loaded (ori_shape): a test pipeline may have
            # resized it before the mask is loaded, as mmseg's do.
            check_label_shape(label.shape,
                              results.get('ori_shape', results['img'].shape),
                              path, results.get('img_path'))
        if results.get('tags') is not None:
            num_classes = len(results['tags']) + 1
            # Two comparisons in the common case; np.unique (which names
            # the values) only for a bad map.
            if not ((label < num_classes) | (label == IGNORE_INDEX)).all():
                check_label_values(np.asarray(label), num_classes, path)
