"""Every network of the loop runs on EfficientNetLite, as
configs/iaffinity/deeplab_lite0_voc.py builds them (tiny inputs)."""
import copy
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

import iaffinity_plugins  # noqa: F401
from iaffinity_plugins.models.backbones.efficientnet_lite import (
    load_packaged_state_dict)
from iaffinity_plugins.registry import MODELS

CONFIG = (Path(__file__).parents[2] / 'configs' / 'iaffinity' /
          'deeplab_lite0_voc.py')
K = 3  # classes, background included
SIZE = 48


@pytest.fixture(scope='module')
def stages():
    """The loop's stage models with K classes, random init."""
    loop = Config.fromfile(CONFIG).to_dict()['train_cfg']
    models = {name: copy.deepcopy(loop[name]['model'])
              for name in ('cam', 'unary', 'pairwise', 'confidence')}
    models['cam']['num_classes'] = K - 1
    models['unary']['decode_head']['num_classes'] = K
    models['pairwise']['head']['num_classes'] = K
    models['pairwise']['unary'] = models['unary']
    models['confidence']['num_classes'] = K
    return models


def _build(cfg: dict):
    # EncoderDecoder builds its data preprocessor in the default scope.
    with DefaultScope.overwrite_default_scope('mmseg'):
        return MODELS.build(cfg)


def _samples(n: int = 2) -> list:
    samples = []
    for i in range(n):
        shape = (SIZE, SIZE)
        sample = SegDataSample(metainfo=dict(
            img_shape=shape, pad_shape=shape, ori_shape=shape,
            tags=[1.0, float(i % 2)]))
        sample.gt_sem_seg = PixelData(
            data=torch.randint(0, K, (1, SIZE, SIZE)))
        # 4 x 4 superpixels of 12 x 12 pixels
        ids = torch.arange(SIZE) // 12
        sample.gt_superpixels = PixelData(
            data=(ids[:, None] * 4 + ids[None, :])[None])
        samples.append(sample)
    return samples


def _image() -> torch.Tensor:
    """(2, 3, SIZE, SIZE) in the lite0 normalisation's range."""
    return torch.rand(2, 3, SIZE, SIZE) * 2 - 1


def _backward(model, losses: dict) -> None:
    model.parse_losses(losses)[0].backward()


def test_cam_classifier(stages):
    model = _build(stages['cam'])
    cams = model.cam(_image())
    assert cams.shape == (2, K - 1, SIZE // 16, SIZE // 16)  # stride 16
    _backward(model, model(_image(), _samples(), mode='loss'))
    assert model.classifier.weight.grad is not None


def test_unary_net_at_stride_8(stages):
    model = _build(stages['unary'])
    assert model.extract_feat(_image())[-1].shape == (2, 320, 6, 6)
    _backward(model, model.loss(_image(), _samples()))
    metas = [s.metainfo for s in _samples()]
    assert model.encode_decode(_image(), metas).shape == (2, K, SIZE, SIZE)


def test_region_classifier(stages):
    model = _build(stages['confidence'])
    logits = model(_image(), _samples(), mode='tensor')
    assert [tuple(x.shape) for x in logits] == [(16, K)] * 2
    _backward(model, model(_image(), _samples(), mode='loss'))


def test_spn_refiner_with_pretrained_guidance_encoder(stages):
    model = _build(stages['pairwise'])
    # init_weights reaches the encoder inside the head's guidance net and
    # loads the packaged ImageNet weights there (never into the unary net).
    model.init_weights()
    packaged = load_packaged_state_dict('lite0')
    encoder = model.head.guidance.encoder.timm_model
    assert torch.equal(encoder.conv_stem.weight, packaged['_conv_stem.weight'])
    unary_stem = model.unary.backbone.timm_model.conv_stem.weight
    assert not torch.equal(unary_stem, packaged['_conv_stem.weight'])
    logits, gates = model.refine(_image(), torch.full((2, K, SIZE, SIZE),
                                                      1 / K))
    assert logits.shape == (2, K, SIZE, SIZE)
    assert gates.shape == (2, 12, SIZE // 2, SIZE // 2)
    _backward(model, model.loss(_image(), _samples()))
    assert encoder.conv_stem.weight.grad is not None
