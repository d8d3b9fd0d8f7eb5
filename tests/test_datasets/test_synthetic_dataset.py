"""Tests for the procedural synthetic data set and its generator tool."""
import filecmp
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from iaffinity_plugins.datasets import synthetic
from iaffinity_plugins.datasets.synthetic import (CLASS_DEFS,
                                                  make_synthetic_dataset)
from iaffinity_plugins.datasets.voc_layout import read_tags_file
from iaffinity_plugins.labels.label_io import read_label
from iaffinity_plugins.registry import DATASETS

REPO = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


@pytest.fixture(scope='module')
def sample(tmp_path_factory):
    """60 images of the default generator (5 classes, up to 3 objects)."""
    root = str(tmp_path_factory.mktemp('syn') / 'set')
    return make_synthetic_dataset(root, num_train=48, num_val=12, seed=3)


def all_files(root):
    return sorted(
        os.path.relpath(os.path.join(d, f), root) for d, _, files in
        os.walk(root) for f in files)


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    kwargs = dict(num_train=4, num_val=2, min_size=40, max_size=50)
    a = make_synthetic_dataset(str(tmp_path / 'a'), seed=1, **kwargs)
    b = make_synthetic_dataset(str(tmp_path / 'b'), seed=1, **kwargs)
    c = make_synthetic_dataset(str(tmp_path / 'c'), seed=2, **kwargs)
    files = all_files(a)
    assert files == all_files(b) == all_files(c)
    assert len(files) == 2 * 6 + 2 + 3  # images, masks, splits, meta
    _, mismatch, errors = filecmp.cmpfiles(a, b, files, shallow=False)
    assert not mismatch and not errors
    _, mismatch, _ = filecmp.cmpfiles(a, c, files, shallow=False)
    assert any(f.startswith('JPEGImages') for f in mismatch)


def test_layout_sizes_values_and_tags(sample):
    ids = {
        split: open(os.path.join(sample, 'ImageSets', 'Segmentation',
                                 f'{split}.txt')).read().split()
        for split in ('train', 'val')
    }
    assert len(ids['train']) == 48 and len(ids['val']) == 12
    classes = open(os.path.join(sample, 'classes.txt')).read().split()
    assert classes == ['background'] + [c.name for c in CLASS_DEFS[:5]]
    tags = read_tags_file(os.path.join(sample, 'tags.txt'), classes)
    seen = np.zeros(len(classes), bool)
    for img_id in ids['train'] + ids['val']:
        mask = read_label(
            os.path.join(sample, 'SegmentationClass', img_id + '.png'))
        image = Image.open(os.path.join(sample, 'JPEGImages', img_id + '.jpg'))
        assert image.size == mask.shape[::-1] and image.mode == 'RGB'
        assert 96 <= min(mask.shape) and max(mask.shape) <= 128
        values = np.unique(mask)
        assert values.max() < len(classes)  # no 255, no unknown class
        assert len(values) >= 2  # the last object drawn is always visible
        np.testing.assert_array_equal(
            np.flatnonzero(tags[img_id]) + 1, values[values > 0])
        seen[values] = True
    assert seen.all()


def test_objects_are_large_but_leave_background(sample):
    fractions = [
        (read_label(os.path.join(sample, 'SegmentationClass', f)) > 0).mean()
        for f in os.listdir(os.path.join(sample, 'SegmentationClass'))
    ]
    assert 0.1 < np.mean(fractions) < 0.5
    assert max(fractions) < 0.9


def test_colour_does_not_identify_the_class(sample):
    """A nearest-mean-colour classifier of object regions is near chance."""
    colours, labels = [], []
    for name in sorted(os.listdir(os.path.join(sample, 'JPEGImages'))):
        img_id = name[:-4]
        image = np.asarray(
            Image.open(os.path.join(sample, 'JPEGImages', name)), float)
        mask = read_label(
            os.path.join(sample, 'SegmentationClass', img_id + '.png'))
        for value in np.unique(mask[mask > 0]):
            colours.append(image[mask == value].mean(0))
            labels.append(value)
    colours, labels = np.array(colours), np.array(labels)
    means = np.stack([colours[labels == k].mean(0) for k in range(1, 6)])
    predicted = np.linalg.norm(
        colours[:, None] - means[None], axis=2).argmin(1) + 1
    accuracy = (predicted == labels).mean()
    # chance is about 0.2 for 5 classes; fitted on the test data itself
    assert accuracy < 0.4


def test_textures_differ_between_classes():
    """Each class's texture is a different pattern on the same grid."""
    v, u = np.mgrid[-1:1:64j, -1:1:64j]
    patterns = [c.texture(u, v, 3.0).astype(float).ravel() for c in CLASS_DEFS]
    shapes = [c.shape(u, v).ravel() for c in CLASS_DEFS]
    for i in range(len(CLASS_DEFS)):
        for j in range(i):
            assert np.abs(patterns[i] - patterns[j]).mean() > 0.1
            assert (shapes[i] != shapes[j]).mean() > 0.05


def test_core_radius_controls_how_much_of_an_object_is_textured(tmp_path):
    """Mean |horizontal gradient| inside objects grows with the core."""

    def texture_energy(core_radius):
        root = make_synthetic_dataset(
            str(tmp_path / str(core_radius)), num_train=10, num_val=0,
            core_radius=core_radius, seed=4)
        energies = []
        for i in range(10):
            name = f'train_{i:05d}'
            image = np.asarray(
                Image.open(os.path.join(root, 'JPEGImages', name + '.jpg')),
                float)
            mask = read_label(
                os.path.join(root, 'SegmentationClass', name + '.png'))
            gradient = np.abs(np.diff(image, axis=1)).sum(2)
            inside = (mask[:, 1:] > 0) & (mask[:, 1:] == mask[:, :-1])
            energies.append(gradient[inside].mean())
        return np.mean(energies)

    assert texture_energy(3.0) > 1.5 * texture_energy(0.5)


@pytest.mark.parametrize('kwargs', [
    dict(num_classes=len(CLASS_DEFS) + 1),
    dict(num_classes=0),
    dict(min_size=100, max_size=90),
    dict(max_objects=0),
    dict(core_radius=0.1),
])
def test_bad_generator_arguments(tmp_path, kwargs):
    with pytest.raises(ValueError):
        make_synthetic_dataset(str(tmp_path / 'x'), **kwargs)
    assert os.listdir(tmp_path) == []


def test_existing_output_is_refused(tmp_path):
    (tmp_path / 'x').mkdir()
    with pytest.raises(FileExistsError, match='x already exists'):
        make_synthetic_dataset(str(tmp_path / 'x'), num_train=1, num_val=0)


def test_dataset_generates_once_then_reads(tmp_path):
    root = str(tmp_path / 'data' / 'synthetic')
    cfg = dict(
        type='SyntheticWSSSDataset',
        data_root=root,
        generator_cfg=dict(num_train=5, num_val=2, min_size=48, max_size=64))
    dataset = DATASETS.build(cfg)
    assert len(dataset) == 5
    assert len(dataset.metainfo['classes']) == 6
    info = dataset.get_data_info(0)
    assert info['img_id'] == 'train_00000'
    assert info['tags'].shape == (5, ) and info['tags'].any()
    stamp = os.stat(os.path.join(root, 'tags.txt')).st_mtime_ns
    val = DATASETS.build(
        dict(cfg, ann_file='ImageSets/Segmentation/val.txt'))
    assert len(val) == 2
    assert os.stat(os.path.join(root, 'tags.txt')).st_mtime_ns == stamp
    with pytest.raises(ValueError, match='synthetic.json'):
        DATASETS.build(dict(cfg, generator_cfg=dict(num_train=6)))


def lose_race_to_rival(monkeypatch, target):
    """Make the next generation lose: a rival (seed 99) finishes ``target``
    while ours is still in its temp folder."""
    original = synthetic._write_dataset

    def write_then_rival_wins(folder, params):
        original(folder, params)
        monkeypatch.setattr(synthetic, '_write_dataset', original)
        make_synthetic_dataset(target, **dict(params, seed=99))

    monkeypatch.setattr(synthetic, '_write_dataset', write_then_rival_wins)


def test_concurrent_generation_keeps_the_winner(tmp_path, monkeypatch):
    """Our rename fails, the rival's folder is kept, our temp folder is
    removed; the data set treats the lost race as success."""
    out = str(tmp_path / 'set')
    lose_race_to_rival(monkeypatch, out)
    with pytest.raises(FileExistsError):
        make_synthetic_dataset(out, num_train=2, num_val=0, min_size=32,
                               max_size=32)
    assert os.listdir(tmp_path) == ['set']
    assert '"seed": 99' in open(os.path.join(out, 'synthetic.json')).read()

    other = str(tmp_path / 'other')
    lose_race_to_rival(monkeypatch, other)
    dataset = DATASETS.build(
        dict(
            type='SyntheticWSSSDataset',
            data_root=other,
            generator_cfg=dict(num_train=2, num_val=0, min_size=32,
                               max_size=32, seed=99)))
    assert len(dataset) == 2
    assert sorted(os.listdir(tmp_path)) == ['other', 'set']


def test_make_synthetic_tool(tmp_path):
    out = str(tmp_path / 'tool')
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(REPO, 'tools', 'make_synthetic.py'), '--out', out,
            '--num-train', '3', '--num-val', '1', '--num-classes', '8',
            '--seed', '5'
        ],
        capture_output=True,
        text=True,
        timeout=120)
    assert result.returncode == 0, result.stderr
    assert 'wrote 3 train + 1 val images' in result.stdout
    assert 'wavy_crescent' in result.stdout
    assert len(os.listdir(os.path.join(out, 'JPEGImages'))) == 4
