"""Every shipped config loads, and every ``type`` in it is registered."""
import copy
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
CONFIG_DIR = osp.join(REPO, 'configs', 'iaffinity')
CONFIGS = sorted(glob.glob(osp.join(CONFIG_DIR, '*.py')) +
                 glob.glob(osp.join(CONFIG_DIR, 'ablations', '*.py')))
# Plain mmengine trainings (no EM loop): CAM classifiers and the fully
# supervised references.
NON_EM = ('cam_', 'fully_supervised_')
BASES = dict(synthetic='synthetic_demo.py', vgg16_voc='deeplab_vgg16_voc.py',
             photo='photo_demo.py')
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


@pytest.mark.parametrize(
    'path', [p for p in CONFIGS
             if not osp.basename(p).startswith(NON_EM)], ids=osp.basename)
def test_em_configs_define_every_stage(path):
    cfg = Config.fromfile(path)
    loop = cfg.train_cfg
    assert loop.type == 'IterativeAffinityLoop'
    for stage in ('cam', 'unary', 'pairwise', 'confidence'):
        if stage == 'pairwise' and loop.pairwise is None:
            continue  # the "no pairwise" ablation
        assert {'model', 'pipeline', 'optim_wrapper', 'param_scheduler',
                'train_cfg'} <= set(loop[stage]), stage
    # The final network evaluated on val is the unary net of the loop.
    assert cfg.model == loop.unary.model


def _without(cfg: dict, *keys: str) -> dict:
    """The loop config without ``keys`` (dotted paths)."""
    cfg = copy.deepcopy(cfg)
    for key in keys:
        *parents, last = key.split('.')
        node = cfg
        for parent in parents:
            node = node[parent]
        node.pop(last)
    return cfg


# ablation -> (check of the switch, loop keys it may change)
ABLATIONS = dict(
    psa=(lambda loop: loop['pairwise']['model']['type'] == 'AffinityRefiner'
         and loop['mining']['mode'] == 'majority',
         ('pairwise', 'mining.mode')),
    no_mining=(lambda loop: loop['mining']['mode'] == 'none',
               ('mining.mode', )),
    # without G the refined labels are f_t's own output, so f_{t+1} trains
    # on the mined Y_t instead, unless they are pooled in superpixels
    no_pairwise=(lambda loop: loop['pairwise'] is None and (
        loop['unary_labels'] == 'mined' or loop.get('superpixel_pooling')),
                 ('pairwise', 'unary_labels')),
    no_smoothness=(
        lambda loop: loop['pairwise']['model']['loss_smooth'] is None and
        loop['pairwise']['model']['type'] == 'SPNRefiner',
        ('pairwise.model.loss_smooth', 'pairwise.pipeline')),
    # the own-data recipe leaves L_s out: its ablation puts it back
    smoothness=(
        lambda loop: loop['pairwise']['model']['loss_smooth'] is not None
        and any(t['type'] == 'LoadSuperpixels'
                for t in loop['pairwise']['pipeline']),
        ('pairwise.model.loss_smooth', 'pairwise.pipeline')),
)
# (ablation, data) of every shipped ablation config
SHIPPED_ABLATIONS = [
    (ablation, data) for ablation in sorted(ABLATIONS)
    for data in sorted(BASES) if osp.exists(
        osp.join(CONFIG_DIR, 'ablations', f'{ablation}_{data}.py'))]


@pytest.mark.parametrize('data', sorted(BASES))
def test_every_base_has_the_papers_ablations(data):
    shipped = {ablation for ablation, base in SHIPPED_ABLATIONS
               if base == data}
    # L_s switched one way or the other, whichever the base does not do
    assert shipped in ({'psa', 'no_mining', 'no_pairwise', 'no_smoothness'},
                       {'psa', 'no_mining', 'no_pairwise', 'smoothness'})
    base = Config.fromfile(osp.join(CONFIG_DIR, BASES[data])).train_cfg
    assert ('smoothness' in shipped) == (
        base.pairwise.model.loss_smooth is None)


@pytest.mark.parametrize('ablation,data', SHIPPED_ABLATIONS)
def test_ablation_changes_only_its_switch(ablation, data):
    cfg = Config.fromfile(
        osp.join(CONFIG_DIR, 'ablations', f'{ablation}_{data}.py')).to_dict()
    base = Config.fromfile(osp.join(CONFIG_DIR, BASES[data])).to_dict()
    switched, changed = ABLATIONS[ablation]
    assert switched(cfg['train_cfg'])
    assert _without(cfg['train_cfg'], *changed) == \
        _without(base['train_cfg'], *changed)
    # everything outside the loop as in the base (helper variables aside)
    base.pop('train_cfg')
    assert {key: cfg[key] for key in base} == base


@pytest.mark.parametrize('data', sorted(BASES))
def test_fully_supervised_reference_is_the_final_unary(data):
    cfg = Config.fromfile(osp.join(
        CONFIG_DIR, 'ablations', f'fully_supervised_{data}.py')).to_dict()
    loop = Config.fromfile(osp.join(CONFIG_DIR,
                                    BASES[data])).to_dict()['train_cfg']
    # A loop whose final net starts from f_T names the schedule its
    # reference needs from ImageNet weights.
    base = Config.fromfile(osp.join(CONFIG_DIR, BASES[data])).to_dict()
    final = {**loop['unary'], **loop.get('final_unary', {}),
             **base.get('reference_schedule', {})}
    assert ('reference_schedule' in base) == ('unary_warm_start' in loop)
    assert cfg['model'] == final['model']
    assert cfg['optim_wrapper'] == final['optim_wrapper']
    assert cfg['param_scheduler'] == final['param_scheduler']
    assert cfg['train_cfg'] == dict(
        final['train_cfg'], val_interval=final['train_cfg']['max_iters'])
    data_cfg = cfg['train_dataloader']
    # the EM stages' dataloader (engine/stage_runner.stage_dataloader)
    assert data_cfg['batch_size'] == final.get('batch_size', 8)
    assert data_cfg['sampler']['type'] == 'InfiniteSampler'
    # ground-truth masks: no pseudo-label folder
    assert data_cfg['dataset'].get('label_dir') is None
    assert data_cfg['dataset']['pipeline'] == final['pipeline']
    assert cfg['custom_hooks'] == [dict(type='ValReportHook')]



# stage -> the model keys deeplab_lite0_*.py change (besides the
# normalisation)
LITE0_SWAP = dict(
    cam=('backbone', 'in_channels'),
    unary=('backbone', 'decode_head.in_channels'),
    pairwise=('head.channels', 'head.encoder'),
    confidence=('backbone', 'in_channels'))


def _pop(node: dict, key: str):
    """Remove a dotted key (None when absent) and return its value."""
    *parents, last = key.split('.')
    for parent in parents:
        node = node[parent]
    return node.pop(last, None)


@pytest.mark.parametrize('data', ['voc', 'coco'])
def test_lite0_configs_swap_only_the_networks(data):
    lite = Config.fromfile(
        osp.join(CONFIG_DIR, f'deeplab_lite0_{data}.py')).to_dict()
    vgg = Config.fromfile(
        osp.join(CONFIG_DIR, f'deeplab_vgg16_{data}.py')).to_dict()
    assert lite['model'] == lite['train_cfg']['unary']['model']
    for stage, keys in LITE0_SWAP.items():
        piece = copy.deepcopy(lite['lite0_loop_networks'][stage]['model'])
        ours, theirs = (cfg['train_cfg'][stage]['model'] for cfg in (lite,
                                                                     vgg))
        for key in keys + ('data_preprocessor.mean',
                           'data_preprocessor.std'):
            swapped = _pop(ours, key)
            _pop(theirs, key)
            if key.endswith(('backbone', 'encoder')):
                # exactly the lite0 piece: no VGG16 / ResNet key leaked in
                expected = _pop(piece, key)
                expected.pop('_delete_', None)
                assert swapped == expected, (stage, key)
        assert ours == theirs, stage
    # ... and nothing else of the loop (schedules, pipelines, mining)
    assert lite['train_cfg'] == vgg['train_cfg']


def test_photo_demo_is_the_own_data_recipe_with_its_data():
    """photo_demo.py sets only the data: everything else resolves as in
    deeplab_lite0_custom.py, so whatever the demo gains a user's photographs
    get too."""
    photo = Config.fromfile(osp.join(CONFIG_DIR, 'photo_demo.py')).to_dict()
    custom = Config.fromfile(osp.join(CONFIG_DIR,
                                      'deeplab_lite0_custom.py')).to_dict()
    data_keys = ('data_root', 'photo_demo', 'train_dataloader',
                 'val_dataloader', 'test_dataloader')
    assert {k: v for k, v in photo.items() if k not in data_keys} == \
        {k: v for k, v in custom.items() if k not in data_keys}
    for split in ('train', 'val', 'test'):
        loader, base = photo[f'{split}_dataloader'], custom[
            f'{split}_dataloader']
        assert loader['dataset']['type'] == 'PhotoDemoDataset'
        assert {k: v for k, v in loader.items() if k != 'dataset'} == \
            {k: v for k, v in base.items() if k != 'dataset'}
        assert loader['dataset']['pipeline'] == base['dataset']['pipeline']
