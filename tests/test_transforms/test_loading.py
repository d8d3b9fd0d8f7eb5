"""LoadSuperpixels: cached superpixels that follow geometric transforms."""
import numpy as np
import pytest
from mmcv.transforms import Compose
from mmengine.registry import DefaultScope

import iaffinity_plugins.transforms  # noqa: F401  (registers the transform)
from iaffinity_plugins.labels.superpixels import compute_superpixels
from iaffinity_plugins.registry import TRANSFORMS


def build(*configs) -> Compose:
    # mmseg's registry: mmcv's Compose alone would look in mmengine's root.
    return Compose([TRANSFORMS.build(config) for config in configs])


def blocky_image(height: int = 48, width: int = 64) -> np.ndarray:
    """Random colour blocks: many superpixels with clean edges."""
    rng = np.random.default_rng(0)
    blocks = rng.integers(0, 256, (height // 8, width // 8, 3), np.uint8)
    return blocks.repeat(8, 0).repeat(8, 1)


def test_superpixels_move_with_labels(tmp_path):
    bgr = blocky_image()
    # mmseg configs set default_scope='mmseg'; only then does RandomResize
    # build mmseg's seg_fields-aware Resize instead of mmcv's.
    with DefaultScope.overwrite_default_scope('mmseg'):
        check_pipeline(tmp_path, bgr)


def check_pipeline(tmp_path, bgr):
    pipeline = build(
        dict(type='LoadSuperpixels', cache_dir=str(tmp_path), scale=10,
             min_size=5),
        dict(type='RandomResize', scale=(64, 48), ratio_range=(1.2, 1.5),
             keep_ratio=True),
        dict(type='RandomCrop', crop_size=(32, 32)),
        dict(type='RandomFlip', prob=1.0))
    expected = compute_superpixels(np.ascontiguousarray(bgr[..., ::-1]),
                                   scale=10, min_size=5)
    # A label map that is a function of the superpixel id: any transform
    # applied identically to both keeps the relation.
    labels = (expected % 7).astype(np.uint8)
    results = dict(img=bgr, img_id='a', img_shape=bgr.shape[:2],
                   ori_shape=bgr.shape[:2], gt_seg_map=labels,
                   seg_fields=['gt_seg_map'])
    out = pipeline(results)
    superpixels = out['gt_superpixels']
    assert superpixels.dtype == np.int32
    assert superpixels.shape == out['gt_seg_map'].shape == (32, 32)
    np.testing.assert_array_equal(superpixels % 7, out['gt_seg_map'])
    assert set(np.unique(superpixels)) <= set(np.unique(expected))
    assert len(list(tmp_path.rglob('a.npz'))) == 1


def test_missing_keys_raise(tmp_path):
    transform = build(dict(type='LoadSuperpixels', cache_dir=str(tmp_path)))
    with pytest.raises(KeyError, match="results\\['img_id'\\]"):
        transform(dict(img=blocky_image()))
