"""Tests for PackWSSSInputs."""
import numpy as np
import pytest
import torch
from mmseg.datasets.transforms import PackSegInputs

from iaffinity_plugins.registry import TRANSFORMS
from iaffinity_plugins.transforms.formatting import PackWSSSInputs


def results(**extra):
    rng = np.random.default_rng(0)
    return dict(
        img=rng.integers(0, 256, (6, 8, 3), dtype=np.uint8),
        gt_seg_map=rng.integers(0, 3, (6, 8)).astype(np.uint8),
        img_path='x/a.jpg',
        img_id='a',
        tags=np.array([1, 0, 1], np.float32),
        ori_shape=(6, 8),
        img_shape=(6, 8),
        **extra)


def test_default_meta_keys_extend_mmseg():
    keys = PackWSSSInputs().meta_keys
    assert set(PackSegInputs().meta_keys) < set(keys)
    assert {'img_id', 'tags'} <= set(keys)


def test_packs_tags_ids_labels_and_superpixels():
    superpixels = np.arange(48, dtype=np.int32).reshape(6, 8)
    inputs = results(gt_superpixels=superpixels)
    packed = TRANSFORMS.build(dict(type='PackWSSSInputs'))(dict(inputs))
    sample = packed['data_samples']
    assert packed['inputs'].shape == (3, 6, 8)
    assert sample.metainfo['img_id'] == 'a'
    np.testing.assert_array_equal(sample.metainfo['tags'], [1, 0, 1])
    assert sample.metainfo['img_shape'] == (6, 8)
    np.testing.assert_array_equal(sample.gt_sem_seg.data[0].numpy(),
                                  inputs['gt_seg_map'])
    data = sample.gt_superpixels.data
    assert data.shape == (1, 6, 8) and data.dtype == torch.int64
    np.testing.assert_array_equal(data[0].numpy(), superpixels)


def test_without_labels_or_superpixels():
    inputs = results()
    del inputs['gt_seg_map']
    sample = PackWSSSInputs()(inputs)['data_samples']
    assert 'gt_superpixels' not in sample
    assert 'gt_sem_seg' not in sample
    assert sample.metainfo['img_id'] == 'a'


def test_bad_superpixel_shape():
    with pytest.raises(ValueError, match='gt_superpixels.*a.jpg'):
        PackWSSSInputs()(results(gt_superpixels=np.zeros((1, 6, 8))))
