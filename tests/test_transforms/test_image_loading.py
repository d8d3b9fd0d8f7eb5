"""Image/label loading with checks: good files load as with mmcv/mmseg.

``files`` also fabricates the broken files that tests/test_bad_inputs.py
feeds to the loaders.
"""
import numpy as np
import pytest
from mmcv.transforms import LoadImageFromFile
from PIL import Image

from iaffinity_plugins.labels.label_io import write_label
from iaffinity_plugins.registry import TRANSFORMS


@pytest.fixture
def files(tmp_path):
    """good.jpg, truncated/garbage/empty .jpg, label.png and broken.png."""
    image = np.random.default_rng(0).integers(0, 256, (10, 12, 3),
                                              dtype=np.uint8)
    good = tmp_path / 'good.jpg'
    Image.fromarray(image).save(good)
    data = good.read_bytes()
    (tmp_path / 'truncated.jpg').write_bytes(data[:len(data) // 3])
    (tmp_path / 'garbage.jpg').write_bytes(b'not an image')
    (tmp_path / 'empty.jpg').write_bytes(b'')
    write_label(str(tmp_path / 'label.png'), np.eye(10, 12, dtype=np.uint8))
    (tmp_path / 'broken.png').write_bytes(b'\x89PNG\r\n\x1a\nbroken')
    return tmp_path


def test_good_image_loads_like_mmcv(files):
    path = str(files / 'good.jpg')
    ours = TRANSFORMS.build(dict(type='LoadImageWithCheck'))(
        dict(img_path=path))
    reference = LoadImageFromFile()(dict(img_path=path))
    np.testing.assert_array_equal(ours['img'], reference['img'])
    assert ours['ori_shape'] == (10, 12)


def label_results(path):
    return dict(seg_map_path=str(path), reduce_zero_label=False,
                seg_fields=[])


def test_label_loading(files):
    load = TRANSFORMS.build(dict(type='LoadAnnotationsWithCheck'))
    loaded = load(label_results(files / 'label.png'))
    np.testing.assert_array_equal(loaded['gt_seg_map'], np.eye(10, 12))
    assert loaded['seg_fields'] == ['gt_seg_map']


def test_mask_after_a_test_resize_is_checked_against_the_loaded_image(
        files):
    """mmseg's test order (image, Resize, mask): the mask keeps the image's
    size as loaded and is checked against it, not the resized image."""
    steps = [TRANSFORMS.build(step) for step in (
        dict(type='LoadImageWithCheck'),
        dict(type='Resize', scale=(4096, 20), keep_ratio=True),
        dict(type='LoadAnnotationsWithCheck'))]

    def load(results):
        for step in steps:
            results = step(results)
        return results

    loaded = load(dict(img_path=str(files / 'good.jpg'),
                       **label_results(files / 'label.png')))
    assert loaded['img'].shape[:2] == (20, 24)
    np.testing.assert_array_equal(loaded['gt_seg_map'], np.eye(10, 12))
    write_label(str(files / 'small.png'), np.zeros((5, 6), np.uint8))
    with pytest.raises(ValueError, match=r'small.png is \(5, 6\) \(H, W\) '
                       r'but its image .*good.jpg is \(10, 12\)'):
        load(dict(img_path=str(files / 'good.jpg'),
                  **label_results(files / 'small.png')))
