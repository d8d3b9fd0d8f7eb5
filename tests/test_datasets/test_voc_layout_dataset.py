"""Tests for VOCLayoutDataset: custom folders, tags, pseudo labels (its
errors on bad folders and files: tests/test_bad_inputs.py)."""
import os
import pickle
from unittest import mock

import numpy as np
import pytest
from voc_fabrication import (CLASSES, build_voc_layout, fabricate_voc_layout,
                             mask_with)

from iaffinity_plugins.datasets.voc_layout import (read_tags_file,
                                                   tags_from_mask,
                                                   write_tags_file)
from iaffinity_plugins.labels.label_io import voc_palette, write_label

CONTRACT_KEYS = {
    'img_path', 'img_id', 'tags', 'seg_map_path', 'gt_seg_map_path',
    'label_map', 'reduce_zero_label', 'seg_fields', 'sample_idx'
}


def write(path, text):
    with open(path, 'w') as f:
        f.write(text)


def test_tags_from_mask_ignores_background_and_255():
    tags = tags_from_mask(mask_with(2, 255, 0), 4)
    np.testing.assert_array_equal(tags, [0, 1, 0])
    assert tags.dtype == np.float32


def test_custom_layout_without_tags_file(tmp_path):
    root = fabricate_voc_layout(tmp_path, {
        'a': mask_with(1, 255),
        'b': mask_with(2, 3),
    })
    dataset = build_voc_layout(root)
    assert dataset.metainfo['classes'] == CLASSES
    assert dataset.metainfo['palette'] == voc_palette(4).tolist()
    assert len(dataset) == 2
    info = dataset.get_data_info(1)
    assert set(info) == CONTRACT_KEYS
    assert info['img_id'] == 'b'
    assert info['img_path'] == os.path.join(root, 'JPEGImages', 'b.jpg')
    gt = os.path.join(root, 'SegmentationClass', 'b.png')
    assert info['seg_map_path'] == info['gt_seg_map_path'] == gt
    assert info['label_map'] is None and info['reduce_zero_label'] is False
    assert info['seg_fields'] == []
    assert info['tags'].dtype == np.float32 and info['tags'].shape == (3, )
    np.testing.assert_array_equal(info['tags'], [0, 1, 1])
    np.testing.assert_array_equal(dataset.get_data_info(0)['tags'], [1, 0, 0])


def test_tags_file_wins_and_missing_lines_fall_back_to_masks(tmp_path):
    root = fabricate_voc_layout(tmp_path, {
        'a': mask_with(1),
        'b': mask_with(1),
    })
    # 'a' tagged differently from its mask, to see which source was used;
    # a class name with a space is written with an underscore.
    write(tmp_path / 'tags.txt', 'a dog traffic_light\nunused cat\n')
    dataset = build_voc_layout(root, tags_file='tags.txt')
    np.testing.assert_array_equal(dataset.get_data_info(0)['tags'], [0, 1, 1])
    np.testing.assert_array_equal(dataset.get_data_info(1)['tags'], [1, 0, 0])


def test_tags_file_without_masks(tmp_path):
    root = fabricate_voc_layout(tmp_path, {'a': None, 'b': None})
    write(tmp_path / 'tags.txt', 'a cat\nb\n')
    with mock.patch(
            'iaffinity_plugins.datasets.voc_layout.print_log') as log:
        dataset = build_voc_layout(root, tags_file='tags.txt')
    info = dataset.get_data_info(0)
    assert info['seg_map_path'] is None and info['gt_seg_map_path'] is None
    np.testing.assert_array_equal(info['tags'], [1, 0, 0])
    # 'b' has an empty tag line: kept, counted in one warning
    assert not dataset.get_data_info(1)['tags'].any()
    log.assert_called_once()
    assert '1 of 2 images' in log.call_args.args[0]


def test_missing_tags_file_falls_back_to_masks_with_one_line(tmp_path):
    root = fabricate_voc_layout(tmp_path, {'a': mask_with(2), 'b': mask_with(1)})
    with mock.patch(
            'iaffinity_plugins.datasets.voc_layout.print_log') as log:
        dataset = build_voc_layout(root, tags_file='tags.txt')
    np.testing.assert_array_equal(dataset.get_data_info(0)['tags'], [0, 1, 0])
    np.testing.assert_array_equal(dataset.get_data_info(1)['tags'], [1, 0, 0])
    log.assert_called_once()
    assert 'tags.txt not found' in log.call_args.args[0]


def test_neither_tags_file_nor_mask_names_both_paths(tmp_path):
    root = fabricate_voc_layout(tmp_path, {'a': mask_with(1), 'b': None})
    with pytest.raises(ValueError) as error:
        build_voc_layout(root, tags_file='tags.txt')
    message = str(error.value)
    assert os.path.join(root, 'tags.txt') in message
    assert os.path.join(root, 'SegmentationClass', 'b.png') in message


def test_tags_file_round_trip(tmp_path):
    tags = {'x': np.array([1, 0, 1], np.float32), 'y': np.zeros(3)}
    path = str(tmp_path / 't.txt')
    write_tags_file(path, tags, CLASSES)
    assert open(path).read() == 'x cat traffic_light\ny\n'
    table = read_tags_file(path, CLASSES)
    np.testing.assert_array_equal(table['x'], tags['x'])
    np.testing.assert_array_equal(table['y'], tags['y'])


def test_pseudo_label_dir(tmp_path):
    root = fabricate_voc_layout(tmp_path / 'data', {
        'a': mask_with(1),
        'b': mask_with(2),
    })
    label_dir = tmp_path / 'work' / 'step_1' / 'mined'
    for img_id in ('a', 'b'):
        write_label(str(label_dir / f'{img_id}.png'), mask_with(255))
    dataset = build_voc_layout(root, label_dir=str(label_dir))
    info = dataset.get_data_info(0)
    assert info['seg_map_path'] == str(label_dir / 'a.png')
    assert info['gt_seg_map_path'] == os.path.join(root, 'SegmentationClass',
                                                   'a.png')
    # tags still come from the ground truth, not the pseudo labels
    np.testing.assert_array_equal(info['tags'], [1, 0, 0])

    os.remove(label_dir / 'b.png')
    with pytest.raises(FileNotFoundError, match=r'b\.png'):
        build_voc_layout(root, label_dir=str(label_dir))
    with pytest.raises(FileNotFoundError, match='label_dir not found'):
        build_voc_layout(root, label_dir=str(tmp_path / 'nowhere'))


def test_classes_from_metainfo_need_no_class_file(tmp_path):
    root = fabricate_voc_layout(tmp_path, {'a': mask_with(1)}, classes=None)
    with pytest.raises(FileNotFoundError, match='classes.txt'):
        build_voc_layout(root)
    dataset = build_voc_layout(root, metainfo=dict(classes=('bg', 'thing')))
    assert dataset.metainfo['classes'] == ('bg', 'thing')
    assert len(dataset.metainfo['palette']) == 2


def test_deeplab_list_lines_and_blank_lines(tmp_path):
    root = fabricate_voc_layout(tmp_path, {'a': mask_with(1)})
    write(tmp_path / 'ImageSets/Segmentation/train.txt',
          '\n/JPEGImages/a.jpg /SegmentationClass/a.png\n\n')
    assert build_voc_layout(root).get_data_info(0)['img_id'] == 'a'


def test_tags_survive_serialisation_and_pickling(tmp_path):
    root = fabricate_voc_layout(tmp_path, {'a': mask_with(3)})
    dataset = build_voc_layout(root, serialize_data=True, lazy_init=True)
    dataset.full_init()
    # DataLoader workers receive a pickled copy of the data set
    copy = pickle.loads(pickle.dumps(dataset))
    for ds in (dataset, copy):
        tags = ds.get_data_info(0)['tags']
        assert isinstance(tags, np.ndarray) and tags.dtype == np.float32
        np.testing.assert_array_equal(tags, [0, 0, 1])
