"""Pipeline step that loads (cached) superpixels next to the image."""
from typing import Any

import numpy as np
from mmcv.transforms import BaseTransform

from iaffinity_plugins.labels.superpixels import SuperpixelCache
from iaffinity_plugins.registry import TRANSFORMS


@TRANSFORMS.register_module()
class LoadSuperpixels(BaseTransform):
    """Add ``gt_superpixels`` (H, W) int32 from a :class:`SuperpixelCache`.

    Must run right after ``LoadImageFromFile`` (before any resize), since the
    cache is keyed by ``img_id`` at the original image size. The map is
    appended to ``seg_fields``, so mmseg's geometric transforms (resize with
    nearest interpolation, crop, flip) move it with the labels. This needs
    mmseg's seg_fields-aware ``Resize``/``RandomFlip``: mmcv's ``RandomResize``
    builds mmseg's ``Resize`` only under ``default_scope='mmseg'`` (as mmseg
    configs set). int32 is kept on purpose: cv2's resize rejects int64 but
    handles int32.

    Required keys: ``img`` (H, W, 3) uint8 BGR, ``img_id``.
    Added keys: ``gt_superpixels``; ``seg_fields`` updated.

    Args:
        cache_dir (str): Root folder of the superpixel cache.
        method (str): Superpixel method name.
        **params: Keyword arguments of the method.
    """

    def __init__(self, cache_dir: str, method: str = 'felzenszwalb',
                 **params: Any) -> None:
        self.cache = SuperpixelCache(cache_dir, method, **params)

    def transform(self, results: dict) -> dict:
        for key in ('img', 'img_id'):
            if key not in results:
                raise KeyError(f'LoadSuperpixels needs results[{key!r}] '
                               '(run LoadImageFromFile first on a data set '
                               'whose items have img_id)')
        # LoadImageFromFile gives BGR; the superpixel methods expect RGB.
        rgb = results['img'][..., ::-1]
        results['gt_superpixels'] = self.cache.get(results['img_id'],
                                                   np.ascontiguousarray(rgb))
        results.setdefault('seg_fields', []).append('gt_superpixels')
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(cache_dir={self.cache.folder!r}, '
                f'method={self.cache.method!r}, params={self.cache.params})')
