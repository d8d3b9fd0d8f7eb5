"""Tests for PascalVOCWSSSDataset: cls_labels.npy, XML, SBD-style masks."""
import os

import numpy as np
import pytest
from voc_fabrication import fabricate_voc_layout, mask_with

from iaffinity_plugins.datasets.voc import (VOC_CLASSES, read_cls_labels,
                                            voc_image_id)
from iaffinity_plugins.labels.label_io import voc_palette
from iaffinity_plugins.registry import DATASETS

XML = """<annotation><filename>{id}.jpg</filename>{objects}</annotation>"""
OBJECT = '<object><name>{}</name><difficult>0</difficult></object>'


def one_hot(*classes):
    """(20,) multi-hot of VOC class names."""
    tags = np.zeros(20, np.float32)
    for name in classes:
        tags[VOC_CLASSES.index(name) - 1] = 1
    return tags


def write_xml(root, img_id, *names):
    os.makedirs(os.path.join(root, 'Annotations'), exist_ok=True)
    with open(os.path.join(root, 'Annotations', img_id + '.xml'), 'w') as f:
        f.write(XML.format(id=img_id, objects=''.join(map(OBJECT.format,
                                                          names))))


@pytest.fixture
def voc_root(tmp_path):
    """train_aug with one image per tag source; SBD-style masks."""
    aeroplane, person = 1, 15
    root = fabricate_voc_layout(
        tmp_path, {
            '2007_000032': mask_with(aeroplane),
            '2007_000039': mask_with(aeroplane),
            '2008_000001': mask_with(aeroplane),
            '2008_000002': mask_with(person, 255),
        },
        classes=None,
        split='train_aug',
        seg_dir='SegmentationClassAug')
    # PSA keys are strings, IRN keys the digits of the id as an int
    np.save(
        os.path.join(root, 'cls_labels.npy'), {
            '2007_000032': one_hot('cat'),
            2007000039: one_hot('dog', 'person'),
        })
    write_xml(root, '2008_000001', 'bus', 'bus', 'car')
    write_xml(root, '2007_000032', 'horse')  # cls_labels wins by default
    return root


def test_voc_image_id():
    assert voc_image_id(2007000039) == '2007_000039'
    assert voc_image_id(np.int64(2011003276)) == '2011_003276'
    assert voc_image_id('2007_000032') == '2007_000032'


def test_tags_from_each_source_in_preference_order(voc_root):
    dataset = DATASETS.build(
        dict(type='PascalVOCWSSSDataset', data_root=voc_root))
    assert dataset.metainfo['classes'] == VOC_CLASSES
    assert dataset.metainfo['palette'] == voc_palette(21).tolist()
    tags = {d['img_id']: d['tags'] for d in dataset.load_data_list()}
    np.testing.assert_array_equal(tags['2007_000032'], one_hot('cat'))
    np.testing.assert_array_equal(tags['2007_000039'],
                                  one_hot('dog', 'person'))
    np.testing.assert_array_equal(tags['2008_000001'], one_hot('bus', 'car'))
    np.testing.assert_array_equal(tags['2008_000002'], one_hot('person'))
    info = dataset.get_data_info(0)
    assert info['gt_seg_map_path'] == os.path.join(
        voc_root, 'SegmentationClassAug', '2007_000032.png')


def test_preference_is_configurable(voc_root):
    dataset = DATASETS.build(
        dict(
            type='PascalVOCWSSSDataset',
            data_root=voc_root,
            tag_sources=('xml', 'masks')))
    tags = {d['img_id']: d['tags'] for d in dataset.load_data_list()}
    np.testing.assert_array_equal(tags['2007_000032'], one_hot('horse'))
    np.testing.assert_array_equal(tags['2007_000039'], one_hot('aeroplane'))


def test_segmentation_class_split(voc_root):
    fabricate_voc_layout(
        voc_root, {'2007_000033': mask_with(5)},
        classes=None,
        split='val',
        seg_dir='SegmentationClass')
    dataset = DATASETS.build(
        dict(
            type='PascalVOCWSSSDataset',
            data_root=voc_root,
            ann_file='ImageSets/Segmentation/val.txt',
            data_prefix=dict(
                img_path='JPEGImages', seg_map_path='SegmentationClass')))
    np.testing.assert_array_equal(
        dataset.get_data_info(0)['tags'], one_hot('bottle'))


def test_xml_with_unknown_class(voc_root):
    write_xml(voc_root, '2008_000002', 'unicorn')
    with pytest.raises(ValueError, match=r"2008_000002\.xml.*'unicorn'"):
        DATASETS.build(dict(type='PascalVOCWSSSDataset', data_root=voc_root))


def test_corrupt_xml(voc_root):
    with open(os.path.join(voc_root, 'Annotations', '2008_000001.xml'),
              'w') as f:
        f.write('<annotation><object>')
    with pytest.raises(ValueError, match=r'2008_000001\.xml'):
        DATASETS.build(dict(type='PascalVOCWSSSDataset', data_root=voc_root))


def test_cls_labels_with_wrong_length(tmp_path):
    path = str(tmp_path / 'cls_labels.npy')
    np.save(path, {'2007_000032': np.ones(21)})
    with pytest.raises(ValueError, match=r"cls_labels.npy.*'2007_000032'"):
        read_cls_labels(path, 20)
