"""Every shipped config loads, and every ``type`` in it is registered."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope

import iaffinity_plugins  # noqa: F401
from iaffinity_plugins import registry
from iaffinity_plugins.cli import config_dicts
from iaffinity_plugins.plugins import available_extensions
from mmseg.registry import (DATA_SAMPLERS, OPTIM_WRAPPERS, OPTIMIZERS,
                            PARAM_SCHEDULERS, VISBACKENDS, VISUALIZERS,
                            WEIGHT_INITIALIZERS)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'iaffinity', '*.py')))
REGISTRIES = (registry.MODELS, registry.DATASETS, registry.TRANSFORMS,
              registry.LOOPS, registry.HOOKS, registry.METRICS,
              OPTIM_WRAPPERS, OPTIMIZERS, PARAM_SCHEDULERS, VISBACKENDS,
              VISUALIZERS, DATA_SAMPLERS, WEIGHT_INITIALIZERS)


def _types(node):
    for cfg in config_dicts(node):
        if isinstance(cfg.get('type'), str):
            yield cfg['type']


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_types_are_registered(path):
    cfg = Config.fromfile(path).to_dict()
    # Seed rules are named plugins, not registry entries.
    seed_rules = set(available_extensions('seed_generator'))
    with DefaultScope.overwrite_default_scope('mmseg'):
        unknown = {name for name in _types(cfg) if name not in seed_rules
                   and not any(reg.get(name) for reg in REGISTRIES)}
    assert not unknown, f'{osp.basename(path)}: unregistered types {unknown}'


@pytest.mark.parametrize('path', [p for p in CONFIGS if 'cam_' not in p],
                         ids=osp.basename)
def test_em_configs_define_every_stage(path):
    cfg = Config.fromfile(path)
    loop = cfg.train_cfg
    assert loop.type == 'IterativeAffinityLoop'
    for stage in ('cam', 'unary', 'pairwise', 'confidence'):
        assert {'model', 'pipeline', 'optim_wrapper', 'param_scheduler',
                'train_cfg'} <= set(loop[stage]), stage
    # The final network evaluated on val is the unary net of the loop.
    assert cfg.model == loop.unary.model
