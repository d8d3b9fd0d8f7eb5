"""Tests for the photo demo set, its data set class and its two tools."""
import filecmp
import json
import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from iaffinity_plugins.datasets.photo_demo import (CLASSES, PARAMS_FILE,
                                                   PhotoDemoDataset,
                                                   make_photo_demo)
from iaffinity_plugins.labels.label_io import read_label
from iaffinity_plugins.registry import DATASETS
from tool_scripts import load_tool

TINY = dict(num_train=6, num_val=3, min_size=64, max_size=96)


def all_files(root):
    return sorted(
        osp.relpath(osp.join(d, f), root) for d, _, files in os.walk(root)
        for f in files)


def split_ids(root, split):
    with open(osp.join(root, 'ImageSets', 'Segmentation',
                       split + '.txt')) as f:
        return f.read().split()


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    return make_photo_demo(str(tmp_path_factory.mktemp('photo') / 'set'),
                           seed=1, **TINY)


def test_voc_layout_without_tags_file(tiny):
    ids = {split: split_ids(tiny, split) for split in ('train', 'val')}
    assert ids == dict(train=[f'train_{i:04d}' for i in range(6)],
                       val=[f'val_{i:04d}' for i in range(3)])
    images = [f'JPEGImages/{i}.jpg' for i in ids['train'] + ids['val']]
    masks = [f'SegmentationClass/{i}.png' for i in ids['train'] + ids['val']]
    assert all_files(tiny) == sorted(images + masks + [
        'ImageSets/Segmentation/train.txt', 'ImageSets/Segmentation/val.txt',
        'classes.txt', PARAMS_FILE])  # no tags.txt, no temp file
    with open(osp.join(tiny, 'classes.txt')) as f:
        assert tuple(f.read().split()) == CLASSES
    with open(osp.join(tiny, PARAMS_FILE)) as f:
        assert json.load(f) == dict(TINY, max_objects=4, seed=1)


def test_same_arguments_same_bytes_other_seed_differs(tiny, tmp_path):
    again = make_photo_demo(str(tmp_path / 'again'), seed=1, **TINY)
    other = make_photo_demo(str(tmp_path / 'other'), seed=2, **TINY)
    files = all_files(tiny)
    assert all_files(again) == all_files(other) == files
    _, mismatch, errors = filecmp.cmpfiles(tiny, again, files, shallow=False)
    assert not mismatch and not errors
    _, mismatch, _ = filecmp.cmpfiles(tiny, other, files, shallow=False)
    assert any(f.startswith('JPEGImages') for f in mismatch)
    assert any(f.startswith('SegmentationClass') for f in mismatch)


def test_masks_hold_classes_at_the_image_size(tiny):
    for img_id in split_ids(tiny, 'train') + split_ids(tiny, 'val'):
        image = Image.open(osp.join(tiny, 'JPEGImages', img_id + '.jpg'))
        mask = read_label(osp.join(tiny, 'SegmentationClass', img_id + '.png'))
        assert image.mode == 'RGB' and image.size == mask.shape[::-1]
        assert 64 <= min(mask.shape) and max(mask.shape) <= 96
        values = np.unique(mask)
        assert values.max() < len(CLASSES)  # no 255, no unknown class
        assert 0 in values and len(values) >= 2  # background and an object


def test_every_class_appears_and_objects_leave_background(tmp_path):
    root = make_photo_demo(str(tmp_path / 'set'), num_train=36, num_val=0,
                           min_size=64, max_size=64, seed=0)
    seen = np.zeros(len(CLASSES), int)
    fractions = []
    for img_id in split_ids(root, 'train'):
        mask = read_label(osp.join(root, 'SegmentationClass', img_id + '.png'))
        seen[np.unique(mask)] += 1
        fractions.append((mask > 0).mean())
    assert (seen[1:] >= 3).all(), seen
    assert 0.1 < np.mean(fractions) < 0.6


@pytest.mark.parametrize('kwargs', [
    dict(min_size=31, max_size=64),
    dict(min_size=100, max_size=90),
    dict(num_train=0),
    dict(num_val=-1),
    dict(max_objects=0),
])
def test_bad_arguments_raise_and_write_nothing(tmp_path, kwargs):
    with pytest.raises(ValueError):
        make_photo_demo(str(tmp_path / 'x'), **kwargs)
    assert os.listdir(tmp_path) == []


def test_existing_output_is_refused(tmp_path):
    (tmp_path / 'x').mkdir()
    with pytest.raises(FileExistsError, match='x already exists'):
        make_photo_demo(str(tmp_path / 'x'), **TINY)


def test_dataset_generates_on_first_use_then_checks(tmp_path):
    root = str(tmp_path / 'data' / 'photo_demo')
    cfg = dict(type='PhotoDemoDataset', data_root=root,
               generator_cfg=dict(TINY, seed=3))
    dataset = DATASETS.build(cfg)
    assert isinstance(dataset, PhotoDemoDataset) and len(dataset) == 6
    assert dataset.metainfo['classes'] == CLASSES
    assert not osp.exists(osp.join(root, 'tags.txt'))
    for index in range(len(dataset)):
        info = dataset.get_data_info(index)
        mask = read_label(info['gt_seg_map_path'])
        expected = np.zeros(len(CLASSES) - 1, np.float32)
        expected[np.unique(mask[mask > 0]) - 1] = 1
        np.testing.assert_array_equal(info['tags'], expected)  # from masks
    stamp = os.stat(osp.join(root, PARAMS_FILE)).st_mtime_ns
    val = DATASETS.build(dict(cfg, ann_file='ImageSets/Segmentation/val.txt'))
    assert len(val) == 3
    assert os.stat(osp.join(root, PARAMS_FILE)).st_mtime_ns == stamp
    assert len(DATASETS.build(dict(cfg, generator_cfg=None))) == 6
    with pytest.raises(ValueError, match=PARAMS_FILE):
        DATASETS.build(dict(cfg, generator_cfg=dict(TINY, seed=4)))
    with pytest.raises(ValueError, match=PARAMS_FILE):
        DATASETS.build(dict(cfg, generator_cfg=dict(num_train=6)))


def test_make_photo_demo_tool(tmp_path, capsys):
    out = str(tmp_path / 'tool')
    assert load_tool('make_photo_demo.py').main([
        out, '--num-train', '2', '--num-val', '1', '--min-size', '48',
        '--max-size', '56', '--max-objects', '2', '--seed', '7'
    ]) == out
    printed = capsys.readouterr().out
    assert 'wrote 2 train + 1 val images (48..56 px, 5 foreground classes: ' \
        'cat, cup, motorcycle, face, coin)' in printed
    with open(osp.join(out, PARAMS_FILE)) as f:
        assert json.load(f) == dict(num_train=2, num_val=1, min_size=48,
                                    max_size=56, max_objects=2, seed=7)
    with pytest.raises(FileExistsError):
        load_tool('make_photo_demo.py').main([out])


def test_plot_photo_demo_tool(tiny, tmp_path):
    out = str(tmp_path / 'pictures' / 'demo.png')
    load_tool('plot_photo_demo.py').main([
        out, '--data-root', tiny, '--num', '3', '--cell', '40'])
    picture = Image.open(out)
    assert picture.mode == 'RGB'
    assert picture.size == (3 * 44 + 4, 2 * 44 + 4 + 22)
