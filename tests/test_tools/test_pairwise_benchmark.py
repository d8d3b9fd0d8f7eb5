"""tools/benchmarks/pairwise.py on a tiny finished EM run."""
import json
import os
import os.path as osp

import pytest
from mmengine.config import Config
from tool_scripts import load_tool

from iaffinity_plugins.engine import stage_benchmark as bench

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_retrains_the_pairwise_stage_and_prints_a_row(tiny_run, tiny_data,
                                                      capsys):
    config, work_dir = tiny_run
    tool = load_tool('benchmarks/pairwise.py')
    options = ['train_cfg.pairwise.model.head.init_cfg.std=0.1',
               'train_cfg.pairwise.optim_wrapper.optimizer.lr=5e-3']
    result, row = tool.main([config, work_dir, '--step', '1',
                             '--cfg-options', *options])
    out_dir = result['out_dir']
    assert osp.dirname(out_dir) == osp.join(work_dir, 'benchmarks')
    # g_1 trained on Y_1 over f_1, as the loop trains it
    stage = Config.fromfile(max(
        osp.join(out_dir, 'pairwise', name) for name in
        os.listdir(osp.join(out_dir, 'pairwise')) if name.endswith('.py')))
    assert stage.model.head.init_cfg.std == 0.1
    assert stage.optim_wrapper.optimizer.lr == 5e-3
    assert stage.model.unary_checkpoint == osp.join(
        work_dir, 'step_1', 'unary', 'final_weights.pth')
    dataset = stage.train_dataloader.dataset
    assert dataset.label_dir == osp.join(work_dir, 'step_1', 'labels')
    superpixels = [t for t in dataset.pipeline
                   if t['type'] == 'LoadSuperpixels']
    assert superpixels[0]['cache_dir'] == osp.join(work_dir, 'superpixels')
    for name in ('unary_labels', 'refined'):
        assert len(os.listdir(osp.join(out_dir, name))) == \
            tiny_data['num_train']
    # f_1's output is what the loop wrote: the same unary net
    for name in os.listdir(osp.join(out_dir, 'unary_labels')):
        with open(osp.join(out_dir, 'unary_labels', name), 'rb') as ours, \
                open(osp.join(work_dir, 'step_1', 'unary_labels', name),
                     'rb') as loops:
            assert ours.read() == loops.read(), name
    pixels = result['pixels']
    assert 0 <= pixels['fixed'] <= pixels['unary_wrong']
    assert 0 <= pixels['broken'] <= pixels['unary_right']
    assert pixels['unary_wrong'] + pixels['unary_right'] > 0
    assert result['energy_refined'] is not None
    assert result['energy_labels'] is not None
    printed = capsys.readouterr().out
    assert tool.HEADER in printed and row in printed
    assert row.startswith(f'| {work_dir} | 1 | step_1/labels | '
                          'model.head.init_cfg.std=0.1 '
                          'optim_wrapper.optimizer.lr=0.005 | ')
    assert row.count('|') == tool.HEADER.count('|')
    saved = json.loads(open(osp.join(out_dir, 'result.json')).read())
    assert saved['row'] == row
    # A second call finds the trained stage and the written labels.
    mtime = os.stat(osp.join(out_dir, 'pairwise', 'final_weights.pth'))
    again, _ = tool.main([config, work_dir, '--cfg-options', *options,
                          '--energy-samples', '0'])
    assert again['out_dir'] == out_dir
    assert os.stat(osp.join(out_dir, 'pairwise', 'final_weights.pth')
                   ).st_mtime_ns == mtime.st_mtime_ns
    assert again['energy_refined'] is None
    assert again['refined_miou'] == result['refined_miou']


def test_step_0_trains_on_its_mined_labels_and_bad_inputs_raise(tiny_run,
                                                                tmp_path):
    config, work_dir = tiny_run
    tool = load_tool('benchmarks/pairwise.py')
    assert bench.pairwise_training_labels(work_dir, 0) == osp.join(
        work_dir, 'step_0', 'labels')
    with pytest.raises(RuntimeError, match='step_5/unary is not done'):
        tool.main([config, work_dir, '--step', '5'])
    with pytest.raises(FileNotFoundError, match='label folder'):
        tool.main([config, work_dir, '--label-dir', str(tmp_path / 'no')])
    with pytest.raises(ValueError, match='no pairwise net'):
        tool.main([config, work_dir, '--cfg-options',
                   'train_cfg.pairwise=None'])
