"""Tests for image/label loading whose errors name the file."""
import numpy as np
import pytest
from mmcv.transforms import LoadImageFromFile
from PIL import Image

from iaffinity_plugins.labels.label_io import write_label
from iaffinity_plugins.registry import TRANSFORMS


@pytest.fixture
def files(tmp_path):
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


@pytest.mark.parametrize('name',
                         ['truncated.jpg', 'garbage.jpg', 'empty.jpg'])
def test_corrupt_image_error_names_the_file(files, name):
    load = TRANSFORMS.build(dict(type='LoadImageWithCheck'))
    with pytest.raises(OSError, match=f'cannot load image .*{name}'):
        load(dict(img_path=str(files / name)))


def test_missing_image_keeps_file_not_found(files):
    load = TRANSFORMS.build(dict(type='LoadImageWithCheck'))
    with pytest.raises(FileNotFoundError, match='absent.jpg'):
        load(dict(img_path=str(files / 'absent.jpg')))


def label_results(path):
    return dict(seg_map_path=str(path), reduce_zero_label=False,
                seg_fields=[])


def test_label_loading(files):
    load = TRANSFORMS.build(dict(type='LoadAnnotationsWithCheck'))
    loaded = load(label_results(files / 'label.png'))
    np.testing.assert_array_equal(loaded['gt_seg_map'], np.eye(10, 12))
    assert loaded['seg_fields'] == ['gt_seg_map']
    with pytest.raises(OSError, match='cannot load label map .*broken.png'):
        load(label_results(files / 'broken.png'))
