"""DeepLabV2Head: ASPP-sum branches, shapes, init, bad arguments."""
from pathlib import Path

import pytest
import torch
from mmengine import Config
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from iaffinity_plugins.models.heads import DeepLabV2Head
from iaffinity_plugins.registry import MODELS


def _head(dilations, **kwargs):
    kwargs = dict(dict(in_channels=8, channels=4, num_classes=3), **kwargs)
    return DeepLabV2Head(dilations=dilations, **kwargs)


@pytest.mark.parametrize('dilations', [(12, ), (6, 12, 18, 24)])
def test_output_shape_and_branches(dilations):
    head = _head(dilations)
    head.init_weights()
    out = head((torch.rand(1, 8, 45, 45), ))
    assert out.shape == (1, head.num_classes, 45, 45)
    assert len(head.fc67) == len(head.fc8) == len(dilations)
    assert [b[0].dilation[0] for b in head.fc67] == list(dilations)
    assert not hasattr(head, 'conv_seg')


def test_branches_are_summed():
    head = _head((2, 4), dropout_ratio=0.5).eval()
    x = torch.rand(2, 8, 9, 9)
    expected = sum(fc8(fc67(x)) for fc67, fc8 in zip(head.fc67, head.fc8))
    single = [fc8(fc67(x)) for fc67, fc8 in zip(head.fc67, head.fc8)]
    assert torch.allclose(head((x, )), expected)
    assert torch.allclose(head((x, )), single[0] + single[1])


def test_fc8_init_is_small_normal():
    head = _head((12, ), channels=256)
    head.init_weights()
    std = head.fc8[0].weight.std().item()
    assert 0.008 < std < 0.012
    assert torch.all(head.fc8[0].bias == 0)


def test_loss_and_predict_through_base_class():
    head = _head((1, 2))
    head.init_weights()
    sample = SegDataSample()
    label = torch.randint(0, 3, (1, 16, 16))
    label[:, :4] = 255
    sample.gt_sem_seg = PixelData(data=label)
    losses = head.loss((torch.rand(1, 8, 4, 4), ), [sample], None)
    assert set(losses) == {'loss_ce', 'acc_seg'}
    assert torch.isfinite(losses['loss_ce'])
    out = head.predict((torch.rand(1, 8, 4, 4), ),
                       [dict(img_shape=(16, 16))], None)
    assert out.shape == (1, 3, 16, 16)


@pytest.mark.parametrize('dilations', [(), (0, ), (6, -1), (2.5, )])
def test_bad_dilations_raise(dilations):
    with pytest.raises(ValueError, match='dilations'):
        _head(dilations)


def test_multiple_select_raises():
    with pytest.raises(ValueError, match='one feature map'):
        DeepLabV2Head(dilations=(1, ), in_channels=(4, 4), in_index=(0, 1),
                      input_transform='multiple_select', channels=4,
                      num_classes=3)


CONFIGS = Path(__file__).parents[3] / 'configs' / '_base_' / 'models'


@pytest.mark.parametrize('name, stride', [('deeplab_vgg16_largefov', 8),
                                          ('deeplabv2_r101', 8)])
def test_unary_base_configs_build_and_run(name, stride):
    # EncoderDecoder builds its data preprocessor by name in the scope.
    init_default_scope('mmseg')
    cfg = Config.fromfile(CONFIGS / f'{name}.py')
    # SyncBN needs a process group; the runner reverts it, we do it here.
    if cfg.model.backbone.get('norm_cfg'):
        cfg.model.backbone.norm_cfg = dict(type='BN', requires_grad=True)
    cfg.model.decode_head.num_classes = 5
    model = MODELS.build(cfg.model).eval()
    model.init_weights()
    assert isinstance(model.decode_head, DeepLabV2Head)
    with torch.no_grad():
        feats = model.extract_feat(torch.rand(1, 3, 65, 65))
        logits = model.encode_decode(torch.rand(1, 3, 65, 65),
                                     [dict(img_shape=(65, 65))])
    assert feats[-1].shape[2:] == (65 // stride + 1, ) * 2
    assert logits.shape == (1, 5, 65, 65)
