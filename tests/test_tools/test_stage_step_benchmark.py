"""tools/benchmarks/stage_step.py on a tiny finished EM run."""
import os
import os.path as osp

import pytest
from tool_scripts import load_tool

from iaffinity_plugins.engine.stage_benchmark import load_run_config

TIMES = ('step', 'data_wait', 'step_zero', 'data_wait_zero', 'preprocessor',
         'bare', 'ratio', 'ratio_zero')


def _stage_folders(work_dir: str) -> dict:
    """Every file of the run outside ``benchmarks/`` with its mtime."""
    files = {}
    for root, dirs, names in os.walk(work_dir):
        dirs[:] = [name for name in dirs if name != 'benchmarks']
        for name in names:
            path = osp.join(root, name)
            files[path] = os.stat(path).st_mtime_ns
    return files


def test_times_every_stage_and_prints_a_row_each(tiny_run, capsys):
    config, work_dir = tiny_run
    tool = load_tool('benchmarks/stage_step.py')
    before = _stage_folders(work_dir)
    argv = [config, work_dir, '--step', '1', '--iters', '1', '--warmup', '1',
            '--threads', '1', '--cfg-options',
            'train_cfg.unary.num_workers=1']
    results, table = tool.main(argv)
    assert [result['stage'] for result in results] == list(tool.STAGES)
    assert [result['name'] for result in results] == [
        'seeds/cam', 'step_1/unary', 'step_1/pairwise', 'step_1/confidence']
    assert [result['workers'] for result in results] == [0, 1, 0, 0]
    for result in results:
        assert all(result[key] > 0 for key in TIMES), result
        assert result['shape'] == (2, 3, 32, 32)
    # Without workers the step is timed once.
    cam = results[0]
    assert (cam['step'], cam['data_wait']) == (cam['step_zero'],
                                               cam['data_wait_zero'])
    printed = capsys.readouterr().out
    lines = printed.splitlines()
    assert lines[0] == ('command: python tools/benchmarks/stage_step.py '
                        + ' '.join(argv))
    assert table in printed
    rows = table.splitlines()
    assert rows[0] == tool.HEADER
    assert len(rows) == 2 + len(results)
    for row, result in zip(rows[2:], results):
        assert row.startswith(f"| {result['name']} | 2 x 32x32 | "
                              f"{result['workers']} | ")
        assert row.count('|') == tool.HEADER.count('|')
    # The run is untouched, the benchmark's runners are gone.
    assert _stage_folders(work_dir) == before
    assert os.listdir(osp.join(work_dir, 'benchmarks', 'stage_step')) == []


def test_the_loops_labels_and_bad_inputs(tiny_run):
    config, work_dir = tiny_run
    tool = load_tool('benchmarks/stage_step.py')
    cfg = load_run_config(config, None, work_dir)
    labels = {stage: tool.stage_setup(cfg, work_dir, stage, 1)[1]
              for stage in tool.STAGES}
    assert labels == dict(
        cam=None, unary=osp.join(work_dir, 'step_0', 'refined'),
        pairwise=osp.join(work_dir, 'step_1', 'labels'),
        confidence=osp.join(work_dir, 'step_1', 'unary_labels'))
    assert tool.stage_setup(cfg, work_dir, 'unary', 0)[1] == osp.join(
        work_dir, 'step_0', 'seeds')
    pairwise = tool.stage_setup(cfg, work_dir, 'pairwise', 1)[0]
    assert pairwise['model']['unary_checkpoint'] == osp.join(
        work_dir, 'step_1', 'unary', 'final_weights.pth')
    confidence = tool.stage_setup(cfg, work_dir, 'confidence', 1)[0]
    assert tool.stage_workers(confidence) == 0
    assert tool.stage_workers(tool.with_workers(confidence, 3)) == 3
    with pytest.raises(RuntimeError, match='step_5/unary_labels is not done'):
        tool.main([config, work_dir, '--step', '5', '--stages',
                   'confidence'])
    with pytest.raises(ValueError, match='no pairwise net'):
        tool.main([config, work_dir, '--stages', 'pairwise',
                   '--cfg-options', 'train_cfg.pairwise=None'])
    with pytest.raises(SystemExit):
        tool.main([config, work_dir, '--warmup', '0'])
