"""Unary scores: tag restriction, multi-scale / flip averaging."""
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine import Config
from mmengine.registry import init_default_scope
from mmseg.structures import SegDataSample

from iaffinity_plugins.labels.scores import restrict_to_tags, unary_scores
from iaffinity_plugins.registry import MODELS

CONFIGS = Path(__file__).parents[2] / 'configs'


def test_restrict_to_tags_zeroes_absent_classes():
    logits = torch.randn(2, 4, 5, 6)
    tags = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    restricted = restrict_to_tags(logits, tags)
    assert torch.isinf(restricted[0, 2]).all() and torch.isinf(
        restricted[1, 1:]).all()
    kept = [(0, 0), (0, 1), (0, 3), (1, 0)]
    for n, k in kept:
        assert torch.equal(restricted[n, k], logits[n, k])
    probs = restricted.softmax(dim=1)
    assert torch.all(probs[0, 2] == 0)
    # Only background is left for an image with no tag.
    assert torch.allclose(probs[1, 0], torch.ones(5, 6))


def test_restrict_to_tags_bad_shape():
    with pytest.raises(ValueError, match='K-1'):
        restrict_to_tags(torch.zeros(1, 4, 2, 2), torch.zeros(1, 4))


@pytest.fixture(scope='module')
def segmentor():
    # EncoderDecoder builds its data preprocessor by name in the default scope.
    init_default_scope('mmseg')
    cfg = Config.fromfile(
        CONFIGS / '_base_/models/deeplab_vgg16_largefov.py')
    cfg.model.decode_head.update(num_classes=4, channels=16)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model.eval()


def _samples(tags):
    return [SegDataSample(metainfo=dict(tags=np.asarray(t, np.float32)))
            for t in tags]


def test_unary_scores_flip_average_matches_manual(segmentor):
    inputs = torch.randn(2, 3, 41, 33)
    tags = [[1, 0, 0], [0, 1, 1]]
    scores = unary_scores(segmentor, inputs, _samples(tags), flip=True)
    assert scores.shape == (2, 4, 41, 33)

    metas = [dict(img_shape=(41, 33), pad_shape=(41, 33))] * 2
    with torch.no_grad():
        plain = segmentor.encode_decode(inputs, metas)
        mirrored = segmentor.encode_decode(inputs.flip(3), metas).flip(3)
    mask = torch.tensor([[1, 1, 0, 0], [1, 0, 1, 1]], dtype=torch.bool)
    expected = 0
    for logits in (plain, mirrored):
        logits = logits.masked_fill(~mask[:, :, None, None], float('-inf'))
        expected = expected + logits.softmax(1) / 2
    assert torch.allclose(scores, expected, atol=1e-6)
    assert torch.all(scores[0, 2:] == 0) and torch.all(scores[1, 1] == 0)
    assert torch.allclose(scores.sum(1), torch.ones(2, 41, 33))


def test_unary_scores_multi_scale_resizes_to_input(segmentor):
    inputs = torch.randn(1, 3, 33, 33)
    scores = unary_scores(segmentor, inputs, _samples([[1, 1, 1]]),
                          scales=(1.0, 0.5))
    half = F.interpolate(inputs, scale_factor=0.5, mode='bilinear',
                         align_corners=False)
    with torch.no_grad():
        full = segmentor.encode_decode(inputs, [dict(img_shape=(33, 33))])
        small = segmentor.encode_decode(half, [dict(img_shape=(16, 16))])
    small = F.interpolate(small, size=(33, 33), mode='bilinear',
                          align_corners=False)
    expected = (full.softmax(1) + small.softmax(1)) / 2
    assert torch.allclose(scores, expected, atol=1e-6)
