"""Tests for the COCO 2014 converter and COCO2014WSSSDataset on a
fabricated three-image instances json."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from iaffinity_plugins.datasets.coco import COCO_CLASSES, convert_coco_split
from iaffinity_plugins.labels.label_io import read_label
from iaffinity_plugins.registry import DATASETS

REPO = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
PERSON, CAR, DOG = (COCO_CLASSES.index(n) for n in ('person', 'car', 'dog'))


def box(x0, y0, x1, y1):
    """A rectangle as a COCO polygon."""
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


def category_id(index):
    """Sparse, non-contiguous category ids, like COCO's (1..90)."""
    return 3 * index + 7


@pytest.fixture
def coco_root(tmp_path):
    root = tmp_path / 'coco'
    (root / 'train2014').mkdir(parents=True)
    (root / 'annotations').mkdir()
    images = [
        dict(id=9, file_name='COCO_train2014_000000000009.jpg', height=20,
             width=30),
        dict(id=25, file_name='COCO_train2014_000000000025.jpg', height=20,
             width=30),
        dict(id=30, file_name='COCO_train2014_000000000030.jpg', height=20,
             width=30),
    ]
    annotations = [
        # small car inside a large person, listed first: painting by area
        # (large first) must keep the car visible
        dict(id=1, image_id=9, category_id=category_id(CAR), iscrowd=0,
             segmentation=box(10, 5, 15, 10), area=25, bbox=[10, 5, 5, 5]),
        dict(id=2, image_id=9, category_id=category_id(PERSON), iscrowd=0,
             segmentation=box(5, 2, 25, 18), area=320, bbox=[5, 2, 20, 16]),
        dict(id=3, image_id=25, category_id=category_id(PERSON), iscrowd=1,
             segmentation=box(0, 0, 10, 20), area=200, bbox=[0, 0, 10, 20]),
        dict(id=4, image_id=25, category_id=category_id(DOG), iscrowd=0,
             segmentation=box(5, 5, 20, 15), area=150, bbox=[5, 5, 15, 10]),
    ]
    # categories listed in shuffled order: the index follows sorted ids
    categories = [
        dict(id=category_id(i), name=name)
        for i, name in enumerate(COCO_CLASSES) if i > 0
    ][::-1]
    with open(root / 'annotations' / 'instances_train2014.json', 'w') as f:
        json.dump(
            dict(images=images, annotations=annotations,
                 categories=categories), f)
    for image in images:
        Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(
            root / 'train2014' / image['file_name'])
    return str(root)


def label(root, img_id):
    return read_label(
        os.path.join(root, 'SegmentationClass', 'train2014', img_id + '.png'))


def test_converter_writes_labels_split_tags_and_classes(coco_root):
    assert convert_coco_split(coco_root) == 3
    first = label(coco_root, 'COCO_train2014_000000000009')
    assert first.shape == (20, 30)
    assert first[7, 12] == CAR  # small instance on top
    assert first[3, 7] == PERSON
    assert first[0, 0] == 0 and first[19, 29] == 0
    second = label(coco_root, 'COCO_train2014_000000000025')
    assert second[1, 2] == 255  # crowd region, not under an instance
    assert second[10, 8] == DOG  # instance overrides the crowd region
    assert not label(coco_root, 'COCO_train2014_000000000030').any()

    split = os.path.join(coco_root, 'ImageSets', 'Segmentation')
    assert open(os.path.join(split, 'train2014.txt')).read().split() == [
        'COCO_train2014_000000000009', 'COCO_train2014_000000000025',
        'COCO_train2014_000000000030'
    ]
    assert open(os.path.join(split, 'train2014_tags.txt')).read() == (
        'COCO_train2014_000000000009 person car\n'
        'COCO_train2014_000000000025 person dog\n'
        'COCO_train2014_000000000030\n')
    classes = open(os.path.join(coco_root, 'classes.txt')).read()
    assert classes.splitlines() == list(COCO_CLASSES)
    # existing files are kept unless overwrite
    assert convert_coco_split(coco_root) == 0
    assert convert_coco_split(coco_root, overwrite=True) == 3


def tags_by_id(dataset):
    return {
        d['img_id'][-2:]: np.flatnonzero(d['tags']) + 1
        for d in dataset.load_data_list()
    }


@pytest.mark.parametrize('source', [
    dict(tags_file='ImageSets/Segmentation/train2014_tags.txt'),
    dict(ann_json='annotations/instances_train2014.json'),
])
def test_tags_from_json_and_tags_file_agree(coco_root, source):
    convert_coco_split(coco_root)
    dataset = DATASETS.build(
        dict(type='COCO2014WSSSDataset', data_root=coco_root, **source))
    assert len(dataset.metainfo['classes']) == 81
    tags = tags_by_id(dataset)
    assert tags['09'].tolist() == [PERSON, CAR]
    assert tags['25'].tolist() == [PERSON, DOG]  # crowd objects are tagged
    assert tags['30'].tolist() == []


def test_tags_from_pngs(coco_root):
    convert_coco_split(coco_root)
    dataset = DATASETS.build(
        dict(type='COCO2014WSSSDataset', data_root=coco_root))
    tags = tags_by_id(dataset)
    assert tags['09'].tolist() == [PERSON, CAR]
    assert tags['25'].tolist() == [DOG]  # crowd pixels are 255


def test_json_with_other_categories_is_rejected(coco_root):
    convert_coco_split(coco_root)
    path = os.path.join(coco_root, 'annotations', 'instances_train2014.json')
    with open(path) as f:
        content = json.load(f)
    content['categories'][0]['name'] = 'unicorn'
    with open(path, 'w') as f:
        json.dump(content, f)
    with pytest.raises(ValueError, match='instances_train2014.json'):
        DATASETS.build(
            dict(
                type='COCO2014WSSSDataset',
                data_root=coco_root,
                ann_json='annotations/instances_train2014.json'))


def test_missing_json(tmp_path):
    with pytest.raises(FileNotFoundError, match='instances_val2014.json'):
        convert_coco_split(str(tmp_path), 'val2014')


def test_convert_tool(coco_root):
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(REPO, 'tools', 'convert_coco.py'), '--data-root',
            coco_root, '--split', 'train2014'
        ],
        capture_output=True,
        text=True,
        timeout=120)
    assert result.returncode == 0, result.stderr
    assert 'wrote 3 label maps' in result.stdout
