"""tools/benchmarks/unary_step.py on a tiny finished EM run."""
import json
import os
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config

from iaffinity_plugins.engine import stage_benchmark as bench
from iaffinity_plugins.evaluation.label_metrics import evaluate_label_dir
from tool_scripts import load_tool

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def stage_config(stage_dir: str) -> Config:
    """The newest config the stage runner dumped in ``stage_dir``."""
    return Config.fromfile(max(
        osp.join(stage_dir, name) for name in os.listdir(stage_dir)
        if name.endswith('.py')))


def test_the_runs_recipe_reproduces_its_unary_net(tiny_run, tiny_data,
                                                  capsys):
    config, work_dir = tiny_run
    tool = load_tool('benchmarks/unary_step.py')
    result, row = tool.main([config, work_dir, '--step', '1'])
    out_dir = result['out_dir']
    assert osp.dirname(out_dir) == osp.join(work_dir, 'benchmarks')
    assert osp.basename(out_dir).startswith('unary_step1_')
    # f_1 trained on the refined labels of step 0, as the loop trains it
    stage = stage_config(osp.join(out_dir, 'unary'))
    assert stage.train_dataloader.dataset.label_dir == osp.join(
        work_dir, 'step_0', 'refined')
    # Same config, labels and seed: the run's f_1 output to the bit.
    names = sorted(os.listdir(osp.join(out_dir, 'unary_labels')))
    assert len(names) == tiny_data['num_train']
    assert names == sorted(os.listdir(osp.join(work_dir, 'step_1',
                                               'unary_labels')))
    for name in names:
        with open(osp.join(out_dir, 'unary_labels', name), 'rb') as ours, \
                open(osp.join(work_dir, 'step_1', 'unary_labels', name),
                     'rb') as loops:
            assert ours.read() == loops.read(), name
    assert result['variant_miou'] == result['run_miou']
    pixels = result['pixels']
    assert pixels['fixed'] == pixels['broken'] == 0
    assert pixels['unary_wrong'] + pixels['unary_right'] > 0
    assert result['errors'] == result['run_errors']
    assert set(tool.ERROR_COLUMNS) <= set(result['errors'])
    printed = capsys.readouterr().out
    assert tool.HEADER in printed and row in printed
    assert row.startswith(f'| {work_dir} | 1 | step_0/refined | default | '
                          f"{result['run_miou']:.2f} | "
                          f"{result['variant_miou']:.2f} | +0.00 | 0 of ")
    assert row.count('|') == tool.HEADER.count('|')
    saved = json.loads(open(osp.join(out_dir, 'result.json')).read())
    assert saved['row'] == row
    assert open(osp.join(out_dir, 'row.md')).read().splitlines()[::2] == [
        tool.HEADER, row]
    # A second call finds the trained stage and the written labels.
    weights = osp.join(out_dir, 'unary', 'final_weights.pth')
    mtime = os.stat(weights).st_mtime_ns
    again, again_row = tool.main([config, work_dir, '--step', '1'])
    assert again['out_dir'] == out_dir
    assert os.stat(weights).st_mtime_ns == mtime
    assert again_row == row


def test_a_label_variant_trains_elsewhere(tiny_run, tiny_data):
    config, work_dir = tiny_run
    tool = load_tool('benchmarks/unary_step.py')
    labels = osp.join(work_dir, 'step_0', 'labels')
    result, row = tool.main([config, work_dir, '--step', '1',
                             '--label-dir', labels,
                             '--compare-with', 'step_0/unary_labels',
                             '--cfg-options',
                             'train_cfg.unary.train_cfg.max_iters=3'])
    out_dir = result['out_dir']
    assert osp.basename(out_dir).startswith('unary_step1_')
    stage = stage_config(osp.join(out_dir, 'unary'))
    assert stage.train_dataloader.dataset.label_dir == labels
    assert stage.train_cfg.max_iters == 3
    assert len(os.listdir(osp.join(out_dir, 'unary_labels'))) == \
        tiny_data['num_train']
    # Compared with f_0's output, not f_1's.
    assert result['compared_with'] == 'step_0/unary_labels'
    f_0 = evaluate_label_dir(osp.join(work_dir, 'step_0', 'unary_labels'),
                             tool.bench.build_dataset(
                                 tool.bench.load_run_config(config, None,
                                                            work_dir)))
    assert result['run_miou'] == f_0['miou']
    assert result['run_errors'] == f_0['errors']
    pixels = result['pixels']
    assert 0 <= pixels['fixed'] <= pixels['unary_wrong']
    assert 0 <= pixels['broken'] <= pixels['unary_right']
    assert row.startswith(f'| {work_dir} | 1 | step_0/labels | '
                          'train_cfg.max_iters=3 | ')
    default = tool.run(config, work_dir, 1)
    assert default['out_dir'] != out_dir


def test_a_warm_started_run_retrains_f_t_from_its_f_t_minus_1(tiny_run,
                                                              tmp_path):
    """With train_cfg.unary_warm_start the tool trains f_1 as such a loop
    does: from the run's f_0 with the warm-start entries (here no
    iteration, so it ends with f_0's weights)."""
    config, work_dir = tiny_run
    cfg = Config.fromfile(config)
    cfg.train_cfg.unary_warm_start = dict(
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=0))
    warm_config = str(tmp_path / 'warm.py')
    cfg.dump(warm_config)
    tool = load_tool('benchmarks/unary_step.py')
    result = tool.run(warm_config, work_dir, 1)

    def weights(path):
        return torch.load(path, map_location='cpu')['state_dict']

    trained = weights(osp.join(result['out_dir'], 'unary',
                               'final_weights.pth'))
    f_0 = weights(bench.stage_weights(work_dir, 'step_0/unary'))
    assert trained.keys() == f_0.keys()
    assert all(torch.equal(trained[key], f_0[key]) for key in f_0)


def test_default_labels_and_bad_inputs(tiny_run, tmp_path):
    config, work_dir = tiny_run
    tool = load_tool('benchmarks/unary_step.py')
    assert bench.unary_training_labels(work_dir, 0) == osp.join(
        work_dir, 'step_0', 'seeds')
    assert bench.unary_training_labels(work_dir, 2) == osp.join(
        work_dir, 'step_1', 'refined')
    assert bench.unary_training_labels(work_dir, 2, 'mined') == osp.join(
        work_dir, 'step_1', 'labels')
    missing = str(tmp_path / 'no_such_labels')
    with pytest.raises(FileNotFoundError, match=re.escape(missing)):
        tool.main([config, work_dir, '--label-dir', missing])
    with pytest.raises(RuntimeError,
                       match='step_5/unary_labels is not done'):
        tool.main([config, work_dir, '--step', '5'])
    with pytest.raises(RuntimeError,
                       match='step_7/unary_labels is not done'):
        tool.main([config, work_dir, '--compare-with',
                   'step_7/unary_labels'])
    with pytest.raises(ValueError, match='--step must be >= 0'):
        tool.main([config, work_dir, '--step', '-1'])


def test_a_moved_work_dir_finds_its_variants(tmp_path):
    from iaffinity_plugins.engine.stage_benchmark import benchmark_dir

    def name(work_dir, labels='step_0/labels'):
        stage_cfg = dict(init_cfg=osp.join(work_dir, 'step_0', 'unary.pth'))
        return osp.basename(benchmark_dir(
            str(work_dir), 'unary_step1', stage_cfg,
            osp.join(work_dir, labels)))

    old, new = tmp_path / 'a' / 'run', tmp_path / 'b' / 'run'
    assert name(old) == name(new)
    assert name(old) != name(old, labels='step_0/seeds')
    # a work dir given relative to the current folder, as on the command line
    assert name(osp.relpath(old)) == name(new)
