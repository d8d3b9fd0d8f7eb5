"""Tests of the SPN refiner: frozen unary + trainable SPN head."""
import copy
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.dataset import pseudo_collate
from mmengine.runner import save_checkpoint
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

import iaffinity_plugins  # noqa: F401
from iaffinity_plugins.models.losses.affinity_loss import affinity_pair_labels
from iaffinity_plugins.labels.refinement import refine_image
from iaffinity_plugins.models.ops.spn_scan import GATE_OFFSETS, gate_affinity
from iaffinity_plugins.registry import MODELS

K = 4


@MODELS.register_module(name='SPNRefinerTestBackbone', force=True)
class TinyBackbone(nn.Module):
    """Two convs, stride 2: enough to be a real unary segmentor."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8),
            nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.Dropout(0.5))

    def forward(self, x):
        return (self.body(x), )


UNARY = dict(
    type='EncoderDecoder',
    backbone=dict(type='SPNRefinerTestBackbone'),
    decode_head=dict(type='FCNHead', in_channels=8, channels=8, num_convs=1,
                     num_classes=K, in_index=0,
                     loss_decode=dict(type='CrossEntropyLoss')))


def make_refiner(**kwargs):
    cfg = dict(
        type='SPNRefiner',
        unary=UNARY,
        head=dict(type='SPNHead', num_classes=K, propagation_channels=4,
                  channels=(4, 8, 8)),
        data_preprocessor=dict(type='SegDataPreProcessor', mean=[0, 0, 0],
                               std=[1, 1, 1], size_divisor=4))
    cfg.update(kwargs)
    return MODELS.build(cfg)


def make_samples(n, size, ori_shape=None, superpixels=True):
    samples = []
    for i in range(n):
        sample = SegDataSample(metainfo=dict(
            img_shape=size, pad_shape=size, ori_shape=ori_shape or size,
            tags=[1.0, 0.0, float(i % 2)], img_path=f'img{i}.jpg'))
        sample.gt_sem_seg = PixelData(
            data=torch.randint(0, 3, (1, *size)).masked_fill(
                torch.rand(1, *size) < 0.3, 255))
        if superpixels:
            sample.gt_superpixels = PixelData(
                data=torch.arange(size[0] * size[1]).view(1, *size) // 10)
        samples.append(sample)
    return samples


def test_loss_backward_and_frozen_unary():
    refiner = make_refiner()
    refiner.train()
    assert refiner.head.training and not refiner.unary.training
    assert not any(m.training for m in refiner.unary.modules())
    unary_state = {k: v.clone() for k, v in refiner.unary.state_dict().items()}
    inputs = torch.randn(2, 3, 16, 20)
    losses = refiner(inputs, make_samples(2, (16, 20)), mode='loss')
    assert set(losses) == {'loss_ce', 'loss_smooth'}
    sum(losses.values()).backward()
    assert all(p.grad is None and not p.requires_grad
               for p in refiner.unary.parameters())
    assert all(p.grad is not None for p in refiner.head.parameters())
    # eval-mode BN: running statistics untouched by the training forward
    for key, value in refiner.unary.state_dict().items():
        torch.testing.assert_close(value, unary_state[key])


def test_no_smoothness_ablation_and_missing_superpixels():
    samples = make_samples(1, (8, 8), superpixels=False)
    losses = make_refiner(loss_smooth=None)(torch.randn(1, 3, 8, 8), samples,
                                            mode='loss')
    assert set(losses) == {'loss_ce'}
    with pytest.raises(KeyError, match='gt_superpixels'):
        make_refiner()(torch.randn(1, 3, 8, 8), samples, mode='loss')


def test_unary_probs_respect_tags():
    refiner = make_refiner().eval()
    probs = refiner.unary_probs(torch.randn(2, 3, 12, 12),
                                make_samples(2, (12, 12)))
    assert probs.shape == (2, K, 12, 12)
    torch.testing.assert_close(probs.sum(1), torch.ones(2, 12, 12))
    # tags [1, 0, i % 2]: class 2 always absent, class 3 absent in image 0
    assert probs[:, 2].max() == 0 and probs[0, 3].max() == 0
    assert probs[1, 3].min() > 0 and probs[:, 0].min() > 0
    unrestricted = make_refiner(restrict_to_tags=False).eval()
    unrestricted.load_state_dict(refiner.state_dict())
    free = unrestricted.unary_probs(torch.randn(2, 3, 12, 12),
                                    make_samples(2, (12, 12)))
    assert free[:, 2].min() > 0


def test_predict_and_tensor_modes():
    refiner = make_refiner().eval()
    inputs = torch.randn(2, 3, 16, 16)
    results = refiner(inputs, make_samples(2, (16, 16), ori_shape=(20, 24)),
                      mode='predict')
    assert len(results) == 2
    assert results[0].pred_sem_seg.data.shape == (1, 20, 24)
    assert results[0].seg_logits.data.shape == (K, 20, 24)
    logits = refiner(inputs, make_samples(2, (16, 16)), mode='tensor')
    assert logits.shape == (2, K, 16, 16)
    # absent classes stay impossible after refinement
    assert (results[0].pred_sem_seg.data != 2).all()


def test_refine_and_apply_affinity():
    refiner = make_refiner().eval()
    inputs = torch.randn(1, 3, 12, 12)
    probs = torch.rand(1, K, 12, 12).softmax(1)
    logits, gates = refiner.refine(inputs, probs)
    assert logits.shape == (1, K, 12, 12) and gates.shape == (1, 12, 6, 6)
    a = torch.rand(1, 2, 12, 12)
    expected = refiner.head.apply_affinity(a, gates)
    torch.testing.assert_close(refiner.apply_affinity(inputs, a), expected)


PURE_HEAD = dict(type='SPNHead', num_classes=K, propagation_channels=None,
                 output='normalized', channels=(4, 8, 8))


def test_pure_refine_is_normalised_apply_affinity():
    """refine (paper design) = G alpha_u renormalised, G = apply_affinity."""
    refiner = make_refiner(head=PURE_HEAD).eval()
    for p in refiner.head.conv_gates.parameters():
        nn.init.normal_(p, std=0.5)
    inputs = torch.randn(2, 3, 12, 16)
    probs = refiner.unary_probs(inputs, make_samples(2, (12, 16)))
    logits, gates = refiner.refine(inputs, probs)
    refined = refiner.apply_affinity(inputs, probs).clamp_min(1e-6)
    torch.testing.assert_close(logits.exp(),
                               refined / refined.sum(1, keepdim=True))
    assert (logits.exp() - probs).abs().max() > 1e-3  # G is not identity


def test_pure_refiner_trains():
    refiner = make_refiner(head=PURE_HEAD)
    refiner.train()
    losses = refiner(torch.randn(2, 3, 16, 20), make_samples(2, (16, 20)),
                     mode='loss')
    assert set(losses) == {'loss_ce', 'loss_smooth'}
    sum(losses.values()).backward()
    assert all(p.grad is not None for p in refiner.head.parameters())


def test_unary_checkpoint(tmp_path):
    source = make_refiner()
    for p in source.unary.parameters():
        nn.init.normal_(p)
    path = str(tmp_path / 'unary.pth')
    save_checkpoint(dict(state_dict=source.unary.state_dict(),
                         meta=dict(note='x')), path)
    loaded = make_refiner(unary_checkpoint=path)
    for key, value in source.unary.state_dict().items():
        torch.testing.assert_close(loaded.unary.state_dict()[key], value)
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        make_refiner(unary_checkpoint=str(tmp_path / 'missing.pth'))
    with pytest.raises(ValueError, match='unary'):
        make_refiner(unary=None)


def test_train_step_updates_only_the_head():
    from mmengine.optim import OptimWrapper
    refiner = make_refiner()
    refiner.train()
    optim = OptimWrapper(torch.optim.SGD(refiner.parameters(), lr=0.1))
    before = {k: v.clone() for k, v in refiner.state_dict().items()}
    data = dict(inputs=[torch.randint(0, 255, (3, 8, 8), dtype=torch.uint8)],
                data_samples=make_samples(1, (8, 8)))
    log = refiner.train_step(data, optim)
    assert 'loss_ce' in log and 'loss_smooth' in log
    after = refiner.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items()
               if k.startswith('unary.'))
    assert any(not torch.equal(after[k], v) for k, v in before.items()
               if k.startswith('head.'))


# Gate channel (d * 3 + k) * G + group; GATE_OFFSETS[1] = (0, -1) (left to
# right, neighbour k = 1: the pixel on the left), GATE_OFFSETS[4] = (0, 1),
# GATE_OFFSETS[7] = (-1, 0) (top to bottom: the pixel above),
# GATE_OFFSETS[10] = (1, 0).
def test_gate_affinity_loss_by_hand():
    """A one-row map [0, 1]: only two gates have a partner inside it, both
    across the classes (negative pairs); every other gate is ignored."""
    refiner = make_refiner(
        head=PURE_HEAD, loss_affinity=dict(type='AffinityLoss'))
    gates = torch.rand(1, 12, 1, 2) * 3 - 1  # ignored values everywhere
    gates[0, 1, 0, 1] = 0.5  # pixel 1 -> its left partner, class 0
    gates[0, 4, 0, 0] = 0.25  # pixel 0 -> its right partner, class 1
    labels = torch.tensor([[[0, 1]]])
    expected = (-math.log(1 - 0.5) - math.log(1 - 0.25)) / 2 / 2
    assert refiner.gate_affinity_loss(gates, labels).item() == \
        pytest.approx(expected, abs=1e-4)  # eps = 1e-5 inside the logs
    # a one-column map [1, 1]: two foreground pairs; a gate above 1 is a
    # full link (affinity 1, no loss)
    gates = torch.rand(1, 12, 2, 1) * 3 - 1
    gates[0, 7, 1, 0] = 0.5  # pixel below -> the one above
    gates[0, 10, 0, 0] = 3.0  # pixel above -> the one below
    expected = (-math.log(0.5) - math.log(1.0)) / 2 / 4
    assert refiner.gate_affinity_loss(gates, torch.tensor([[[1], [1]]])
                                      ).item() == pytest.approx(expected,
                                                                abs=1e-4)
    # an unknown pixel ignores its pairs: no known pair, no loss
    assert refiner.gate_affinity_loss(
        gates, torch.tensor([[[1], [255]]])).item() == 0


def test_gate_affinity_loss_per_group_and_at_the_gate_size():
    """Two gate groups count as pairs of their own; labels at input size are
    taken by nearest at the gate size."""
    head = dict(PURE_HEAD, num_classes=4, num_gate_groups=2)
    refiner = make_refiner(
        head=head, loss_affinity=dict(type='AffinityLoss'))
    gates = torch.zeros(1, 24, 1, 2)  # group 1: affinity 0 everywhere
    gates[0, 1 * 2, 0, 1] = 0.5
    gates[0, 4 * 2, 0, 0] = 0.25
    labels = torch.tensor([[[0, 0, 1, 1], [0, 0, 1, 1]]])  # (1, 2, 4)
    expected = (-math.log(0.5) - math.log(0.75) - 0 - 0) / 4 / 2
    assert refiner.gate_affinity_loss(gates, labels).item() == \
        pytest.approx(expected, abs=1e-4)  # eps = 1e-5 inside the logs


def test_gate_affinity_loss_trains_the_gates():
    refiner = make_refiner(
        head=PURE_HEAD,
        loss_affinity=dict(type='AffinityLoss', loss_weight=0.5,
                           loss_name='loss_gates'))
    refiner.train()
    samples = make_samples(2, (16, 20))
    losses = refiner(torch.randn(2, 3, 16, 20), samples, mode='loss')
    assert set(losses) == {'loss_ce', 'loss_smooth', 'loss_gates'}
    losses['loss_gates'].backward()
    assert refiner.head.conv_gates.weight.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0
               for p in refiner.head.guidance.parameters() if p.ndim > 1)
    assert all(p.grad is None for p in refiner.unary.parameters())


def test_gate_affinity_loss_alone_links_regions_and_cuts_boundaries():
    """Two flat colour halves labelled 0 | 1: training on the affinity loss
    alone raises the gates inside the halves and lowers those across.

    Over 20 random inits (torch seeds 0-19; the suite seeds 0), 100 Adam
    steps left at most 0.24 of the first loss, raised the within-half
    affinity by at least 0.63 and left the cross-boundary affinity at most
    0.031 (30 steps left it up to 0.29).
    """
    refiner = make_refiner(
        head=PURE_HEAD, loss_affinity=dict(type='AffinityLoss'))
    refiner.train()
    image = torch.zeros(1, 3, 16, 16)
    image[:, 0, :, :8] = 1.0
    image[:, 2, :, 8:] = 1.0
    labels = torch.zeros(1, 8, 8, dtype=torch.long)  # at the gate size
    labels[:, :, 4:] = 1
    optimizer = torch.optim.Adam(refiner.head.parameters(), lr=1e-2)
    pairs = affinity_pair_labels(labels, GATE_OFFSETS)
    within = pairs['fg'] | pairs['bg']

    def affinities():
        gates = refiner.head.gates(image)
        return gate_affinity(gates), refiner.gate_affinity_loss(gates,
                                                                labels)

    start, first_loss = affinities()
    for _ in range(100):
        optimizer.zero_grad()
        affinities()[1].backward()
        optimizer.step()
    end, last_loss = affinities()
    assert last_loss < first_loss / 2
    assert end[within].mean() > start[within].mean() + 0.4
    assert end[pairs['neg']].mean() < 0.1


def _propagating_e_step():
    """A refiner whose gates propagate, a (12, 16) item for it, and the
    item's refined probabilities alpha_p over background and its tag (1,
    0, 0), normalised: (K, 12, 16)."""
    refiner = make_refiner(head=PURE_HEAD).eval()
    for p in refiner.head.conv_gates.parameters():
        nn.init.normal_(p, std=0.5)
    sample = make_samples(1, (12, 16))[0]
    item = dict(inputs=torch.rand(3, 12, 16) * 255, data_samples=sample)
    batch = refiner.data_preprocessor(pseudo_collate([item]), False)
    probs = refiner.unary_probs(batch['inputs'], batch['data_samples'])
    alpha_p = refiner.refine(batch['inputs'], probs)[0].exp()[0]
    alpha_p[2:] = 0  # classes 2, 3 are not tagged
    return refiner, item, alpha_p / alpha_p.sum(0)


def test_e_step_leaves_low_confidence_refined_pixels_unknown():
    """refine_image(min_confidence=c): the refined map where alpha_p (over
    background and the tags) gives its class at least c, 255 elsewhere;
    the unary map is unchanged."""
    refiner, item, alpha_p = _propagating_e_step()
    dense = refine_image(refiner.unary, refiner, item)
    banded = refine_image(refiner.unary, refiner, item, min_confidence=0.6)
    confident = alpha_p.max(0).values >= 0.6
    assert 0 < confident.float().mean() < 1  # the test has both kinds
    assert torch.equal(banded['unary'], dense['unary'])
    assert torch.equal(banded['refined'],
                       dense['refined'].masked_fill(~confident, 255))


def test_e_step_pools_refined_probabilities_in_superpixels():
    """refine_image(superpixels=S): the refined class of a superpixel is the
    argmax of alpha_p (over background and the tags) averaged inside it
    (G_s alpha_u); one pixel per superpixel is the unpooled map; the unary
    map is unchanged."""
    refiner, item, alpha_p = _propagating_e_step()
    dense = refine_image(refiner.unary, refiner, item)
    blocks = (torch.arange(12)[:, None] // 4) * 4 + torch.arange(16) // 4
    pooled = refine_image(refiner.unary, refiner, item, superpixels=blocks)
    singletons = refine_image(refiner.unary, refiner, item,
                              superpixels=torch.arange(12 * 16).view(12, 16))
    expected = torch.empty(12, 16, dtype=torch.uint8)
    for block in blocks.unique():
        inside = blocks == block
        expected[inside] = alpha_p[:, inside].mean(1).argmax().item()
    assert torch.equal(pooled['refined'], expected)
    assert not torch.equal(expected, dense['refined'])  # pooling acts here
    assert torch.equal(singletons['refined'], dense['refined'])
    assert torch.equal(pooled['unary'], dense['unary'])


def test_boundary_perturbation_feeds_the_training_input(monkeypatch):
    from iaffinity_plugins.models.segmentors import spn_refiner
    refiner = make_refiner(
        boundary_perturbation=dict(max_radius=2, prob=1.0)).train()
    inputs = torch.randn(2, 3, 16, 20)
    samples = make_samples(2, (16, 20))
    uniform = torch.full((2, K, 16, 20), 1.0 / K)
    calls = []

    def fake(probs, **kwargs):
        calls.append(kwargs)
        torch.testing.assert_close(probs,
                                   refiner.unary_probs(inputs, samples))
        return uniform

    monkeypatch.setattr(spn_refiner, 'perturb_boundaries', fake)
    losses = refiner(inputs, samples, mode='loss')
    assert calls == [dict(max_radius=2, prob=1.0)]
    logits, _ = refiner.refine(inputs, uniform)
    labels = torch.stack([s.gt_sem_seg.data[0] for s in samples])
    expected = refiner.loss_decode(logits, labels, ignore_index=255)
    torch.testing.assert_close(losses['loss_ce'], expected)
    # inference refines the unperturbed alpha_u
    refiner.eval()
    metas = [s.metainfo for s in samples]
    torch.testing.assert_close(
        refiner.encode_decode(inputs, metas),
        refiner.refine(inputs, refiner.unary_probs(inputs, samples))[0])
    assert len(calls) == 1


def test_confidence_gates_apply_affinity_needs_the_samples():
    head = dict(PURE_HEAD, confidence_gates=True)
    refiner = make_refiner(head=head).eval()
    for p in refiner.head.conv_gates.parameters():
        nn.init.normal_(p, std=0.5)
    inputs, samples = torch.randn(2, 3, 12, 16), make_samples(2, (12, 16))
    probs = refiner.unary_probs(inputs, samples)
    logits, _ = refiner.refine(inputs, probs)
    refined = refiner.apply_affinity(inputs, probs, samples).clamp_min(1e-6)
    torch.testing.assert_close(logits.exp(),
                               refined / refined.sum(1, keepdim=True))
    # any other map (the energy's one-hot labels) is propagated with the
    # gates weighted by alpha_u's confidence, not by its own
    a = F.one_hot(torch.randint(0, K, (2, 12, 16)), K).permute(0, 3, 1, 2)
    gates = refiner.head.gates(inputs)
    torch.testing.assert_close(
        refiner.apply_affinity(inputs, a.float(), samples),
        refiner.head.apply_affinity(a.float(), gates, probs))
    assert (refiner.apply_affinity(inputs, a.float(), samples) -
            refiner.head.apply_affinity(a.float(), gates, a.float())
            ).abs().max() > 1e-3
    with pytest.raises(ValueError, match='data_samples'):
        refiner.apply_affinity(inputs, probs)


@pytest.mark.parametrize('short_edge', [8, 24])
def test_e_step_reads_images_at_the_short_edge(short_edge):
    """refine_image(short_edge=s): both nets see the image resized to a
    short edge of s; their scores are resized back to the image before the
    argmax, so the maps keep the image's (H, W)."""
    refiner = make_refiner(head=PURE_HEAD).eval()
    for p in refiner.head.conv_gates.parameters():
        nn.init.normal_(p, std=0.5)
    sample = make_samples(1, (12, 16))[0]
    item = dict(inputs=torch.rand(3, 12, 16) * 255, data_samples=sample)
    maps = refine_image(refiner.unary, refiner, item, short_edge=short_edge)
    unary = copy.deepcopy(refiner.unary)
    unary.data_preprocessor = refiner.data_preprocessor
    unary_only = refine_image(unary, None, item, short_edge=short_edge)

    batch = refiner.data_preprocessor(pseudo_collate([item]), False)
    size = (short_edge, round(16 * short_edge / 12))
    inputs = F.interpolate(batch['inputs'], size=size, mode='bilinear',
                           align_corners=False)
    probs = refiner.unary_probs(inputs, batch['data_samples'])
    refined = refiner.refine(inputs, probs)[0]
    expected = {
        name: F.interpolate(scores, size=(12, 16), mode='bilinear',
                            align_corners=False)[0, :2].argmax(0)
        for name, scores in (('unary', probs), ('refined', refined))
    }  # tags (1, 0, 0): background and class 1 only
    assert maps['unary'].shape == maps['refined'].shape == (12, 16)
    assert torch.equal(maps['unary'].long(), expected['unary'])
    assert torch.equal(maps['refined'].long(), expected['refined'])
    assert torch.equal(unary_only['unary'], maps['unary'])
    assert torch.equal(unary_only['refined'], maps['unary'])
    # The scale changes what the nets see.
    native = refine_image(refiner.unary, refiner, item)
    assert not torch.equal(native['refined'], maps['refined'])
