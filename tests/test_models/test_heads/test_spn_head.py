"""Tests of the SPN pairwise head."""
import pytest
import torch
import torch.nn.functional as F

import iaffinity_plugins  # noqa: F401
from iaffinity_plugins.models.heads.spn_head import SPNHead
from iaffinity_plugins.models.ops.spn_scan import (normalize_gates,
                                                   spn_propagate)
from iaffinity_plugins.registry import MODELS


def make_head(**kwargs):
    cfg = dict(type='SPNHead', num_classes=3, propagation_channels=4,
               channels=(4, 8, 8))
    cfg.update(kwargs)
    return MODELS.build(cfg).eval()


def random_probs(n, k, h, w):
    return torch.randn(n, k, h, w).softmax(1)


@pytest.mark.parametrize('stride', [1, 2, 4])
@pytest.mark.parametrize('groups', [1, 2])
def test_shapes_with_odd_sizes(stride, groups):
    head = make_head(propagation_stride=stride, num_gate_groups=groups)
    image = torch.randn(2, 3, 17, 23)
    logits, gates = head(image, random_probs(2, 3, 17, 23))
    assert logits.shape == (2, 3, 17, 23)
    assert gates.shape == (2, 12 * groups, -(-17 // stride), -(-23 // stride))


def test_zero_gates_give_the_unary_prediction():
    head = make_head()
    torch.nn.init.zeros_(head.conv_gates.weight)
    torch.nn.init.zeros_(head.conv_gates.bias)
    probs = random_probs(1, 3, 10, 12)
    logits, _ = head(torch.randn(1, 3, 10, 12), probs)
    torch.testing.assert_close(logits.softmax(1), probs)
    a = torch.rand(1, 5, 10, 12)
    torch.testing.assert_close(
        head.apply_affinity(a, torch.zeros(1, 12, 5, 6)), a)


def test_forward_is_the_documented_composition():
    # logits = log p + up(conv_out(prop(conv_in(down p)) - conv_in(down p)))
    head = make_head(propagation_stride=2, num_gate_groups=2)
    image, probs = torch.randn(1, 3, 9, 10), random_probs(1, 3, 9, 10)
    logits, gates = head(image, probs)
    low = head.conv_in(F.interpolate(probs, size=(5, 5), mode='area'))
    change = head.conv_out(spn_propagate(low, gates) - low)
    expected = probs.log() + F.interpolate(change, size=(9, 10),
                                           mode='bilinear')
    torch.testing.assert_close(logits, expected)


def test_apply_affinity_at_stride_one_is_the_propagation():
    head = make_head(propagation_stride=1)
    gates = torch.randn(2, 12, 6, 7)
    a = torch.rand(2, 3, 6, 7)
    torch.testing.assert_close(head.apply_affinity(a, gates),
                               spn_propagate(a, gates))


def test_gradients_reach_the_guidance_net():
    head = make_head().train()
    logits, gates = head(torch.randn(2, 3, 12, 12), random_probs(2, 3, 12, 12))
    (logits.sum() + gates.sum()).backward()
    for name, param in head.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_default_init_starts_near_the_unary():
    head = make_head()
    head.init_weights()
    assert head.conv_gates.weight.std() < 0.05
    probs = random_probs(1, 3, 16, 16)
    logits, _ = head(torch.randn(1, 3, 16, 16), probs)
    assert (logits.softmax(1) - probs).abs().max() < 0.2


def make_pure_head(**kwargs):
    """The paper's design: alpha_p = G alpha_u, no class projection."""
    return make_head(propagation_channels=None, output='normalized', **kwargs)


def test_pure_head_has_no_class_projection():
    head = make_pure_head()
    assert head.conv_in is None and head.conv_out is None
    assert not any(name.startswith(('conv_in', 'conv_out'))
                   for name, _ in head.named_parameters())


@pytest.mark.parametrize('stride', [1, 2])
@pytest.mark.parametrize('groups', [1, 3])
def test_pure_head_output_is_normalised_g_alpha_u(stride, groups):
    head = make_pure_head(propagation_stride=stride, num_gate_groups=groups)
    image, probs = torch.randn(2, 3, 11, 14), random_probs(2, 3, 11, 14)
    # large gates: the propagation really moves mass
    gates = torch.randn_like(head.gates(image))
    head.gates = lambda _: gates
    logits, _ = head(image, probs)
    refined = head.apply_affinity(probs, gates).clamp_min(head.eps)
    torch.testing.assert_close(logits.exp(),
                               refined / refined.sum(1, keepdim=True))
    torch.testing.assert_close(logits.exp().sum(1), torch.ones(2, 11, 14))
    if groups > 1:  # a K' != K map uses the group-averaged gates
        a = torch.rand(2, 2, 11, 14)
        shared = gates.view(2, 12, groups, *gates.shape[2:]).mean(2)
        torch.testing.assert_close(
            head.apply_affinity(a, gates),
            a + F.interpolate(spn_propagate(
                F.interpolate(a, size=gates.shape[2:], mode='area'), shared)
                - F.interpolate(a, size=gates.shape[2:], mode='area'),
                size=(11, 14), mode='bilinear'))


def test_pure_head_zero_gates_and_absent_classes():
    head = make_pure_head()
    torch.nn.init.zeros_(head.conv_gates.weight)
    torch.nn.init.zeros_(head.conv_gates.bias)
    probs = random_probs(1, 3, 10, 12)
    logits, _ = head(torch.randn(1, 3, 10, 12), probs)
    torch.testing.assert_close(logits.exp(), probs)
    # a class of zero unary probability (absent tag) gets no mass from G
    torch.nn.init.normal_(head.conv_gates.weight)
    probs[:, 2] = 0
    probs = probs / probs.sum(1, keepdim=True)
    logits, _ = head(torch.randn(1, 3, 10, 12), probs)
    assert logits.exp()[:, 2].max() < 1e-4


def test_pure_head_gradients_reach_the_guidance_net():
    head = make_pure_head().train()
    labels = torch.randint(0, 3, (2, 12, 12))
    logits, _ = head(torch.randn(2, 3, 12, 12), random_probs(2, 3, 12, 12))
    F.nll_loss(logits, labels).backward()
    for name, param in head.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match='output'):
        SPNHead(num_classes=3, output='softmax')
    with pytest.raises(ValueError, match='divisible'):
        SPNHead(num_classes=3, propagation_channels=None, num_gate_groups=2)
    with pytest.raises(ValueError, match='propagation_stride'):
        SPNHead(num_classes=3, propagation_stride=3)
    with pytest.raises(ValueError, match='propagation_stride'):
        SPNHead(num_classes=3, channels=(4, 8), propagation_stride=4)
    with pytest.raises(ValueError, match='divisible'):
        SPNHead(num_classes=3, propagation_channels=6, num_gate_groups=4)
    with pytest.raises(ValueError, match='unary_probs'):
        make_head()(torch.randn(1, 3, 8, 8), random_probs(1, 4, 8, 8))


LITE0_ENCODER = dict(type='EfficientNetLite', arch='lite0',
                     out_indices=(0, 1, 2))


@pytest.mark.parametrize('stride', [2, 4, 8])
def test_backbone_encoder_replaces_the_default_one(stride):
    head = make_pure_head(channels=None, encoder=LITE0_ENCODER,
                          propagation_stride=stride)
    # the decoder climbs from level 2 (stride 8) to the propagation stride
    assert len(head.guidance.decoder) == {2: 2, 4: 1, 8: 0}[stride]
    assert head.conv_gates.in_channels == {2: 16, 4: 24, 8: 40}[stride]
    image = torch.randn(2, 3, 17, 23)
    logits, gates = head(image, random_probs(2, 3, 17, 23))
    assert logits.shape == (2, 3, 17, 23)
    assert gates.shape == (2, 12, -(-17 // stride), -(-23 // stride))


def test_probing_the_encoder_leaves_its_bn_statistics():
    head = make_pure_head(channels=None, encoder=LITE0_ENCODER)
    encoder = head.guidance.encoder
    fresh = MODELS.build(LITE0_ENCODER)
    for name, value in fresh.state_dict().items():
        if 'running' in name or 'num_batches' in name:
            assert torch.equal(encoder.state_dict()[name], value), name


def test_init_weights_loads_the_pretrained_encoder():
    encoder = dict(LITE0_ENCODER, init_cfg=dict(
        type='Pretrained', checkpoint='efficientnet-lite0'))
    head = make_pure_head(channels=None, encoder=encoder)
    head.init_weights()
    expected = MODELS.build(encoder)
    expected.init_weights()
    for name, value in expected.state_dict().items():
        assert torch.equal(head.guidance.encoder.state_dict()[name], value)
    assert head.conv_gates.weight.std() < 0.05  # the head's own init too


def test_bad_encoder_arguments_raise():
    with pytest.raises(ValueError, match='channels=None'):
        make_head(encoder=LITE0_ENCODER)
    with pytest.raises(ValueError, match='stride of the encoder'):
        make_head(channels=None, encoder=LITE0_ENCODER, propagation_stride=1)
    with pytest.raises(ValueError, match='encoder'):
        make_head(channels=None)


def test_gate_init_std_from_cfg_options():
    """``--cfg-options train_cfg.pairwise.model.head.init_cfg.std=0.1``
    gives the head ``init_cfg=dict(std=0.1)``: only the std of the default
    gate init changes."""
    from mmengine.config import Config
    cfg = Config(dict(train_cfg=dict(pairwise=dict(model=dict(head=dict(
        type='SPNHead', num_classes=3, propagation_channels=None,
        output='normalized', channels=(4, 8, 8)))))))
    cfg.merge_from_dict({'train_cfg.pairwise.model.head.init_cfg.std': 0.1,
                         'train_cfg.pairwise.model.head.init_cfg.bias': 0.2})
    head = MODELS.build(cfg.train_cfg.pairwise.model.head.to_dict())
    assert head.init_cfg == dict(type='Normal', std=0.1, bias=0.2,
                                 override=dict(name='conv_gates'))
    head.init_weights()
    assert 0.07 < head.conv_gates.weight.std() < 0.13
    torch.testing.assert_close(head.conv_gates.bias, torch.full((12, ), 0.2))
    # a full init_cfg is taken as it is
    assert make_head(init_cfg=dict(type='Constant', val=0)).init_cfg == \
        dict(type='Constant', val=0)


def test_gate_init_std_starts_propagating_within_bounds():
    """The configs' head (G alpha_u, mean merge) with gate std 0.1 moves
    the unary probabilities measurably, std 0.01 hardly; the gates the scan
    uses keep sum |g| <= 1 and the refined map stays a distribution."""
    image = torch.randn(2, 3, 32, 32)
    probs = (2 * torch.randn(2, 3, 32, 32)).softmax(1)
    changes = {}
    for std in (0.01, 0.1):
        torch.manual_seed(0)  # the same guidance net, gates scaled by std
        head = make_pure_head(channels=(16, 32, 64), merge='mean',
                              init_cfg=dict(std=std))
        head.init_weights()
        logits, gates = head(image, probs)
        refined = logits.exp()
        assert refined.min() >= 0 and refined.max() <= 1
        torch.testing.assert_close(refined.sum(1), torch.ones(2, 32, 32))
        g = gates.view(2, 4, 3, *gates.shape[2:])
        normalised = torch.stack(normalize_gates(*g.unbind(2)))
        assert (normalised.abs().sum(0) <= 1 + 1e-6).all()
        # G alpha_u before the renormalisation: measured in [-0.15, 1.1]
        propagated = head.apply_affinity(probs, gates)
        assert propagated.min() > -0.5 and propagated.max() < 1.5
        changes[std] = (refined - probs).abs().mean()
    assert changes[0.1] > 0.005 and changes[0.1] > 4 * changes[0.01]


@pytest.mark.parametrize('stride', [1, 2])
def test_confidence_gates_weigh_each_link_by_the_unary_confidence(stride):
    head = make_pure_head(propagation_stride=stride, confidence_gates=True)
    image, probs = torch.randn(2, 3, 11, 14), random_probs(2, 3, 11, 14)
    gates = torch.randn_like(head.gates(image))
    head.gates = lambda _: gates
    logits, _ = head(image, probs)
    # forward is G alpha_u with the same confidence-weighted G
    refined = head.apply_affinity(probs, gates, probs).clamp_min(head.eps)
    torch.testing.assert_close(logits.exp(),
                               refined / refined.sum(1, keepdim=True))
    # which is the op's weighting by max_k of the area-downsampled alpha_u
    low = F.interpolate(probs, size=gates.shape[2:], mode='area')
    change = spn_propagate(low, gates, head.merge,
                           low.amax(1, keepdim=True)) - low
    torch.testing.assert_close(
        head.apply_affinity(probs, gates, probs),
        probs + F.interpolate(change, size=(11, 14), mode='bilinear'))
    # and differs from the unweighted head's
    plain = make_pure_head(propagation_stride=stride)
    assert (plain.apply_affinity(probs, gates) -
            head.apply_affinity(probs, gates, probs)).abs().max() > 1e-3
    with pytest.raises(ValueError, match='unary_probs'):
        head.apply_affinity(probs, gates)
