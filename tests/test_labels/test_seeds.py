"""Seeds: multi-scale CAMs vs a slow reference, exact seed rules, writing."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine import Config
from mmseg.structures import SegDataSample

from iaffinity_plugins.labels.label_io import read_label
from iaffinity_plugins.labels.seeds import (multi_scale_cam, psa_seeds,
                                            threshold_seeds, write_seeds)
from iaffinity_plugins.plugins import get_extension
from iaffinity_plugins.registry import MODELS

CONFIGS = Path(__file__).parents[2] / 'configs'
_spec = importlib.util.spec_from_file_location(
    'make_seeds', Path(__file__).parents[2] / 'tools' / 'make_seeds.py')
make_seeds = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_seeds)

TINY_RESNET = dict(type='ResNetV1c', depth=18, num_stages=2, stem_channels=8,
                   base_channels=8, strides=(1, 2), dilations=(1, 1),
                   out_indices=(1, ),
                   norm_cfg=dict(type='BN'))


@pytest.fixture
def model():
    model = MODELS.build(dict(
        type='CAMClassifier', backbone=TINY_RESNET, in_channels=16,
        num_classes=3,
        data_preprocessor=dict(type='SegDataPreProcessor',
                               mean=[120.0, 110.0, 100.0],
                               std=[60.0, 50.0, 40.0], bgr_to_rgb=True))
    ).eval()
    # Random init gives CAMs of ~1e-2, where the +1e-5 of the normalisation
    # would already move the peak by 1e-3: scale them to a trained range.
    with torch.no_grad():
        model.classifier.weight.mul_(100)
    return model


def _slow_multi_scale_cam(model, image, tags, scales, flip):
    """Reference: one ``model.cam`` call per scale and per flip."""
    size = image.shape[2:]
    total = torch.zeros(model.num_classes, *size)
    for scale in scales:
        scaled = F.interpolate(image, scale_factor=scale, mode='bilinear',
                               align_corners=False)
        views = [(scaled, False)] + ([(scaled.flip(3), True)] if flip else [])
        for view, flipped in views:
            cam = F.relu(model.cam(view))
            if flipped:
                cam = cam.flip(3)
            total += F.interpolate(cam, size=size, mode='bilinear',
                                   align_corners=False)[0]
    for c in range(model.num_classes):
        total[c] = total[c] / (total[c].max() + 1e-5) if tags[c] else 0
    return total


@pytest.mark.parametrize('flip', [True, False])
def test_multi_scale_cam_matches_slow_reference(model, flip):
    image = torch.randn(1, 3, 37, 29)
    tags = np.array([1.0, 0.0, 1.0], np.float32)
    scales = (1.0, 0.5, 1.5, 2.0)
    with torch.no_grad():
        expected = _slow_multi_scale_cam(model, image, tags, scales, flip)
    cams = multi_scale_cam(model, image, tags, scales, flip)
    assert cams.shape == (3, 37, 29)
    assert torch.allclose(cams, expected, atol=1e-5)
    assert torch.all(cams[1] == 0)
    for c in (0, 2):
        assert cams[c].max().item() == pytest.approx(1.0, abs=1e-3)
    assert cams.min() >= 0


def test_multi_scale_cam_bad_tags(model):
    with pytest.raises(ValueError, match='tags'):
        multi_scale_cam(model, torch.randn(1, 3, 16, 16), np.ones(5))


# Pixel max CAM m over the tagged classes 0 and 2 (class 1 is untagged and
# bright everywhere, so it must never win).
M = np.array([[0.90, 0.30, 0.20, 0.10],
              [0.05, 0.0499, 0.0001, 0.31]], np.float32)


def _hand_cams():
    cams = np.zeros((3, 2, 4), np.float32)
    cams[1] = 0.99
    # Class 2 wins in the right half, class 0 in the left.
    cams[0, :, :2] = M[:, :2]
    cams[2, :, 2:] = M[:, 2:]
    cams[0, :, 2:] = M[:, 2:] / 2
    return cams, np.array([1.0, 0.0, 1.0], np.float32)


def test_threshold_seeds_exact():
    cams, tags = _hand_cams()
    seeds = threshold_seeds(cams, tags, fg_threshold=0.30, bg_threshold=0.05)
    # >= 0.30 -> class (1-based), < 0.05 -> 0, otherwise 255.
    expected = np.array([[1, 1, 255, 255],
                         [255, 0, 0, 3]], np.uint8)
    assert seeds.dtype == np.uint8
    np.testing.assert_array_equal(seeds, expected)


def test_psa_seeds_exact():
    cams, tags = _hand_cams()
    seeds = psa_seeds(cams, tags, alpha_strong_bg=4, alpha_weak_bg=32)
    # m > (1-m)^4: 0.9 (1e-4), 0.3 (0.24), 0.31 -> class.
    # (1-m)^32 >= m: 0.05 (0.194), 0.0499, 0.0001 -> background.
    # 0.2 ((0.8)^4 = 0.41, (0.8)^32 = 8e-4) and 0.1 -> unknown.
    expected = np.array([[1, 1, 255, 255],
                         [0, 0, 0, 3]], np.uint8)
    np.testing.assert_array_equal(seeds, expected)


def test_psa_seeds_match_psa_argmax_reference():
    rng = np.random.default_rng(0)
    cams = rng.random((4, 20, 20)).astype(np.float32) ** 3
    tags = np.array([1, 0, 1, 1], np.float32)
    cams_tagged = cams * tags[:, None, None]
    m = cams_tagged.max(0)
    # PSA (Ahn and Kwak 2018): argmax over [bg, classes] for each alpha.
    label_la, label_ha = (
        np.argmax(np.concatenate([((1 - m)**alpha)[None], cams_tagged]), 0)
        for alpha in (4, 32))
    expected = label_la.astype(np.uint8)
    expected[label_la == 0] = 255
    expected[label_ha == 0] = 0
    np.testing.assert_array_equal(psa_seeds(cams, tags), expected)


@pytest.mark.parametrize('rule, kwargs', [
    (threshold_seeds, dict(fg_threshold=0.1, bg_threshold=0.2)),
    (psa_seeds, dict(alpha_strong_bg=32, alpha_weak_bg=4)),
])
def test_seed_rules_reject_inverted_thresholds(rule, kwargs):
    cams, tags = _hand_cams()
    with pytest.raises(ValueError):
        rule(cams, tags, **kwargs)


def test_seed_rules_are_plugins():
    assert get_extension('seed_generator', 'threshold') is threshold_seeds
    assert get_extension('seed_generator', 'psa') is psa_seeds


class _ItemList(list):
    """Packed items with the data set methods the label writers use."""

    def get_data_info(self, index):
        return dict(img_id=self[index]['data_samples'].metainfo['img_id'])

    def prepare_data(self, index):
        return self[index]


def _item(img_id, tags, generator, size=(24, 28)):
    image = torch.randint(0, 256, (3, *size), dtype=torch.uint8,
                          generator=generator)
    sample = SegDataSample(metainfo=dict(img_id=img_id,
                                         tags=np.asarray(tags, np.float32)))
    return dict(inputs=image, data_samples=sample)


def test_write_seeds_writes_resumes_and_counts_empty_tags(model, tmp_path):
    generator = torch.Generator().manual_seed(0)
    dataset = _ItemList([_item('a', [1, 0, 1], generator),
                         _item('b', [0, 1, 0], generator),
                         _item('empty', [0, 0, 0], generator)])
    seed_cfg = dict(type='threshold', fg_threshold=0.3, bg_threshold=0.0)
    out, cam_dir = tmp_path / 'seeds', tmp_path / 'cams'
    counts = write_seeds(model, dataset, str(out), seed_cfg, str(cam_dir),
                         scales=(1.0, 0.5), flip=True, progress=False)
    assert counts == dict(total=3, written=3, skipped=0, empty_tags=1)
    assert sorted(p.name for p in out.iterdir()) == [
        'a.png', 'b.png', 'empty.png']

    # Same result as normalising by hand and calling the pieces.
    item = dataset[0]
    rgb = item['inputs'][[2, 1, 0]].float()
    mean = torch.tensor([120.0, 110.0, 100.0])[:, None, None]
    std = torch.tensor([60.0, 50.0, 40.0])[:, None, None]
    cams = multi_scale_cam(model, ((rgb - mean) / std)[None],
                           [1, 0, 1], (1.0, 0.5), True)
    np.testing.assert_array_equal(read_label(str(out / 'a.png')),
                                  threshold_seeds(cams, [1, 0, 1], 0.3, 0.0))
    saved = np.load(cam_dir / 'a.npy')
    assert saved.dtype == np.float16 and saved.shape == (3, 24, 28)
    np.testing.assert_allclose(saved, cams.numpy(), atol=1e-3)
    # No tag: all background even though bg_threshold=0 would give 255.
    assert np.all(read_label(str(out / 'empty.png')) == 0)

    (out / 'b.png').unlink()
    again = write_seeds(model, dataset, str(out), seed_cfg, str(cam_dir),
                        scales=(1.0, 0.5), progress=False)
    assert again == dict(total=3, written=1, skipped=2, empty_tags=0)


def test_write_seeds_names_missing_metainfo(model, tmp_path):
    item = _item('a', [1, 0, 0], torch.Generator().manual_seed(0))
    item['data_samples'] = SegDataSample(metainfo=dict(img_path='x/a.jpg',
                                                       img_id='a'))
    with pytest.raises(KeyError, match=r"x/a.jpg.*tags"):
        write_seeds(model, _ItemList([item]), str(tmp_path),
                    dict(type='threshold'),
                    progress=False)


def make_seeds_config(tmp_path, num_train: int = 3) -> str:
    """A make_seeds config: a tiny CAM classifier on a tiny synthetic set
    (generated in ``tmp_path/data`` on first use)."""
    base = CONFIGS / '_base_' / 'datasets' / 'synthetic.py'
    path = tmp_path / 'cam_tiny_synthetic.py'
    path.write_text(f"""
_base_ = [{str(base)!r}]
custom_imports = dict(imports=['iaffinity_plugins'],
                      allow_failed_imports=False)
default_scope = 'mmseg'
generator_cfg = dict(num_train={num_train}, num_val=1, min_size=32,
                     max_size=40, num_classes=3, max_objects=2, seed=0)
train_dataloader = dict(dataset=dict(data_root={str(tmp_path / 'data')!r},
                                     generator_cfg=generator_cfg))
model = dict(type='CAMClassifier', backbone={TINY_RESNET!r}, in_channels=16,
             num_classes=3, data_preprocessor=dict(
                 type='SegDataPreProcessor', mean=[128.0] * 3,
                 std=[64.0] * 3, bgr_to_rgb=True))
cam_cfg = dict(scales=(1.0, 0.5), flip=True)
seed_cfg = dict(type='psa', alpha_strong_bg=4, alpha_weak_bg=32)
""")
    return str(path)


def save_random_init(config: str, checkpoint) -> torch.nn.Module:
    """Save the config's model, randomly initialised, as a checkpoint."""
    model = MODELS.build(Config.fromfile(config).model)
    torch.save(dict(state_dict=model.state_dict()), checkpoint)
    return model


def test_make_seeds_tool(tmp_path):
    config = make_seeds_config(tmp_path)
    checkpoint = tmp_path / 'cam.pth'
    save_random_init(config, checkpoint)

    out, cams = tmp_path / 'seeds', tmp_path / 'cams'
    summary = make_seeds.main([config, str(checkpoint), '--out', str(out),
                               '--cam-dir', str(cams)])
    assert summary['total'] == summary['written'] == 3
    assert len(list(out.glob('*.png'))) == len(list(cams.glob('*.npy'))) == 3
    again = make_seeds.main([config, str(checkpoint), '--out', str(out)])
    assert again['skipped'] == 3 and again['written'] == 0
