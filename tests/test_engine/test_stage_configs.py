"""The stage configs the EM loop derives from its train_cfg."""
import copy
import json

from iaffinity_plugins.engine.manifest import config_hash
from iaffinity_plugins.engine.stage_configs import (pairwise_stage_cfg,
                                                    run_superpixel_cache,
                                                    set_superpixels,
                                                    superpixel_options)
from iaffinity_plugins.transforms.loading import LoadSuperpixels

PAIRWISE = dict(
    model=dict(type='SPNRefiner', unary=None, head=dict(type='SPNHead')),
    pipeline=[dict(type='LoadImageFromFile'),
              dict(type='LoadSuperpixels', cache_dir=None),
              dict(type='PackWSSSInputs')],
    train_cfg=dict(max_iters=2))
UNARY_MODEL = dict(type='EncoderDecoder', backbone=dict(type='ResNetV1c'))


def test_pairwise_stage_cfg_fills_in_the_unary_net_and_superpixels():
    loop_cfg = copy.deepcopy(PAIRWISE)
    cfg = pairwise_stage_cfg(loop_cfg, UNARY_MODEL, 'w/f_1.pth', 'run',
                             dict(scale=100))
    # Exactly this dict: its config hash keys the runs' manifests.
    assert json.dumps(cfg, sort_keys=True) == json.dumps(dict(
        model=dict(type='SPNRefiner', unary=UNARY_MODEL,
                   head=dict(type='SPNHead'), unary_checkpoint='w/f_1.pth'),
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='LoadSuperpixels', cache_dir='run/superpixels',
                       method='felzenszwalb', scale=100),
                  dict(type='PackWSSSInputs')],
        train_cfg=dict(max_iters=2)), sort_keys=True)
    assert loop_cfg == PAIRWISE  # the loop's config is not changed
    cfg['model']['unary']['backbone']['type'] = 'changed'
    assert UNARY_MODEL['backbone']['type'] == 'ResNetV1c'
    # The loop passes its defaulted superpixels: the same config.
    again = pairwise_stage_cfg(PAIRWISE, UNARY_MODEL, 'w/f_1.pth', 'run',
                               superpixel_options(dict(scale=100)))
    assert config_hash(again) == config_hash(pairwise_stage_cfg(
        PAIRWISE, UNARY_MODEL, 'w/f_1.pth', 'run', dict(scale=100)))
    assert pairwise_stage_cfg(None, UNARY_MODEL, 'w', 'run', None) is None


def test_set_superpixels_reaches_a_wrapped_dataset_pipeline():
    cfg = dict(train_dataloader=dict(dataset=dict(
        type='RepeatDataset', dataset=dict(pipeline=[
            dict(type='LoadSuperpixels', cache_dir=None)]))))
    set_superpixels(cfg, 'run', dict(method='slic', n_segments=50))
    assert cfg['train_dataloader']['dataset']['dataset']['pipeline'] == [
        dict(type='LoadSuperpixels', cache_dir='run/superpixels',
             method='slic', n_segments=50)]


def test_the_loop_reads_the_cache_its_pipelines_load_from():
    cfg = dict(pipeline=[dict(type='LoadSuperpixels', cache_dir=None)])
    set_superpixels(cfg, 'run', dict(scale=100))
    options = {k: v for k, v in cfg['pipeline'][0].items() if k != 'type'}
    assert run_superpixel_cache('run', dict(scale=100)).folder == \
        LoadSuperpixels(**options).cache.folder
    assert run_superpixel_cache('run', dict(scale=200)).folder != \
        LoadSuperpixels(**options).cache.folder
