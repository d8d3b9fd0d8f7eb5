"""``PackWSSSInputs``: mmseg's packing plus image-level tags and superpixels.

Shapes: H x W image size after the pipeline's geometric transforms.
"""
import inspect

import numpy as np
import torch
from mmengine.structures import PixelData
from mmseg.datasets.transforms import PackSegInputs

from iaffinity_plugins.registry import TRANSFORMS

# mmseg's own default meta keys, read from its signature so that a newer
# mmseg's additions are kept rather than shadowed by a copied tuple.
MMSEG_META_KEYS = inspect.signature(
    PackSegInputs.__init__).parameters['meta_keys'].default
WSSS_META_KEYS = tuple(MMSEG_META_KEYS) + ('img_id', 'tags')


@TRANSFORMS.register_module()
class PackWSSSInputs(PackSegInputs):
    """Pack image, labels, ``img_id`` and ``tags`` into a ``SegDataSample``.

    Besides ``PackSegInputs``' outputs, ``results['gt_superpixels']``
    ((H, W) int superpixel ids, when loaded) becomes
    ``data_sample.gt_superpixels``, a ``PixelData`` with ``data`` of shape
    (1, H, W) int64. ``img_id`` and ``tags`` ((K-1,) float32) land in the
    sample's metainfo.

    Args:
        meta_keys (Sequence[str]): Keys copied into the metainfo.
    """

    def __init__(self, meta_keys=WSSS_META_KEYS) -> None:
        super().__init__(meta_keys=meta_keys)

    def transform(self, results: dict) -> dict:
        packed = super().transform(results)
        if 'gt_superpixels' in results:
            superpixels = np.asarray(results['gt_superpixels'], dtype=np.int64)
            if superpixels.ndim != 2:
                raise ValueError('gt_superpixels must be (H, W), got shape '
                                 f'{superpixels.shape} for '
                                 f'{results.get("img_path")}')
            packed['data_samples'].gt_superpixels = PixelData(
                data=torch.from_numpy(superpixels[None]))
        return packed
