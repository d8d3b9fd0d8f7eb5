"""VGG16LargeFOV: output stride, channels, torchvision weight loading."""
import math

import pytest
import torch
import torchvision

from iaffinity_plugins.models.backbones import VGG16LargeFOV


def _pooled(size: int, stride: int) -> int:
    """Output size of a 3x3, pad 1, ceil-mode max pool."""
    return math.ceil((size + 2 - 3) / stride) + 1


@pytest.mark.parametrize('size', [65, 50])
def test_output_stride_and_channels(size):
    backbone = VGG16LargeFOV(out_indices=(0, 1, 2, 3, 4))
    outs = backbone(torch.rand(2, 3, size, size))
    expected = []
    spatial = size
    for stride in (2, 2, 2, 1, 1):
        spatial = _pooled(spatial, stride)
        expected.append(spatial)
    assert [o.shape[1] for o in outs] == [64, 128, 256, 512, 512]
    assert [o.shape[2] for o in outs] == expected
    # DeepLab convention: an 8k+1 input gives k+1 outputs (321 -> 41).
    if size % 8 == 1:
        assert outs[-1].shape[2:] == ((size - 1) // 8 + 1, ) * 2


def test_default_returns_pool5_only():
    outs = VGG16LargeFOV()(torch.rand(1, 3, 33, 33))
    assert len(outs) == 1 and outs[0].shape == (1, 512, 5, 5)


def test_stage4_and_5_keep_resolution_with_dilated_conv5():
    backbone = VGG16LargeFOV()
    for index in (24, 26, 28):
        assert backbone.features[index].dilation == (2, 2)
        assert backbone.features[index].padding == (2, 2)
    for index in (23, 30):
        assert backbone.features[index].stride == 1


@pytest.mark.parametrize('bad', [(), (5, ), (-1, )])
def test_bad_out_indices_raise(bad):
    with pytest.raises(ValueError, match='out_indices'):
        VGG16LargeFOV(out_indices=bad)


def test_loads_torchvision_vgg16_state_dict(tmp_path):
    reference = torchvision.models.vgg16(weights=None)
    path = tmp_path / 'vgg16.pth'
    torch.save(reference.state_dict(), path)

    backbone = VGG16LargeFOV(
        init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    ours = set(backbone.state_dict())
    theirs = {k for k in reference.state_dict() if k.startswith('features.')}
    assert ours == theirs  # no missing / unexpected conv keys

    backbone.init_weights()
    for key, value in reference.state_dict().items():
        if key.startswith('features.'):
            assert torch.equal(backbone.state_dict()[key], value), key
