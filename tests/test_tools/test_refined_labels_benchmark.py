"""tools/benchmarks/refined_labels.py on a tiny finished EM run."""
import os
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config

from iaffinity_plugins.labels.label_io import read_label
from tool_scripts import load_tool


def _labels(folder) -> dict:
    return {name: read_label(osp.join(folder, name))
            for name in sorted(os.listdir(folder))}


def test_band_keeps_the_loops_refined_labels_where_confident(tiny_run,
                                                             capsys):
    """Without a band (C near 0) the tool redoes the loop's E-step of step
    1 to the bit; with one it only turns refined pixels unknown."""
    config, work_dir = tiny_run
    tool = load_tool('benchmarks/refined_labels.py')
    loops = _labels(osp.join(work_dir, 'step_1', 'refined'))
    dense, _ = tool.main([config, work_dir, '--step', '1',
                          '--min-confidence', '1e-9'])
    assert dense['labelled'] == 100
    assert {name: label.tobytes() for name, label in
            _labels(dense['label_dir']).items()} == {
        name: label.tobytes() for name, label in loops.items()}

    shares = []
    for confidence in ('0.4', '0.5', '0.6', '0.7', '0.8'):
        banded, row = tool.main([config, work_dir, '--step', '1',
                                 '--min-confidence', confidence])
        assert banded['out_dir'] == osp.join(
            work_dir, 'benchmarks', f'refined_step1_conf{confidence}')
        ours = _labels(banded['label_dir'])
        assert sorted(ours) == sorted(loops)
        unknown = np.concatenate([(ours[n] == 255).ravel() for n in ours])
        assert banded['labelled'] == pytest.approx(
            100 * (1 - unknown.mean()))
        for name, label in ours.items():
            kept = label != 255
            assert np.array_equal(label[kept], loops[name][kept]), name
        shares.append(banded['labelled'])
    # A higher bar keeps fewer pixels; the tiny run's nets are unsure
    # enough that some bar keeps part of them.
    assert shares == sorted(shares, reverse=True)
    assert any(0 < share < 100 for share in shares), shares
    printed = capsys.readouterr().out
    assert tool.HEADER in printed and row in printed
    assert row.count('|') == tool.HEADER.count('|')


def test_bad_confidence_and_missing_stage_raise(tiny_run):
    config, work_dir = tiny_run
    tool = load_tool('benchmarks/refined_labels.py')
    with pytest.raises(ValueError, match=r'--min-confidence must be in '
                       r'\(0, 1\], got 0.0'):
        tool.main([config, work_dir, '--min-confidence', '0'])
    with pytest.raises(RuntimeError, match='stage step_3/unary is not done'):
        tool.main([config, work_dir, '--step', '3', '--min-confidence',
                   '0.5'])


def test_pooling_and_band_follow_the_run_config_unless_told(tiny_run,
                                                           tmp_path):
    """Without a flag the tool pools and bands as the run's config says (it
    redoes the loop's E-step); --superpixel-pooling /
    --no-superpixel-pooling and --min-confidence override it. The pooling
    and the band themselves: test_spn_refiner.py."""
    config, work_dir = tiny_run
    tool = load_tool('benchmarks/refined_labels.py')
    cfg = Config.fromfile(config)
    cfg.train_cfg.superpixel_pooling = True
    pooled_config = str(tmp_path / 'pooled.py')
    cfg.dump(pooled_config)
    for args, pooled in (([config], False), ([pooled_config], True),
                         ([config, '--superpixel-pooling'], True),
                         ([pooled_config, '--no-superpixel-pooling'], False)):
        result, _ = tool.main([args[0], work_dir, '--step', '1',
                               '--min-confidence', '0.5', *args[1:]])
        assert result['superpixel_pooling'] is pooled, args
        assert result['out_dir'].endswith(
            '_pooled' if pooled else '_conf0.5'), args
    cfg.train_cfg.refined_min_confidence = 0.6
    cfg.dump(pooled_config)
    for args, confidence in (([], 0.6), (['--min-confidence', '0.5'], 0.5)):
        result, _ = tool.main([pooled_config, work_dir, '--step', '1', *args])
        assert result['min_confidence'] == confidence, args
        assert result['out_dir'].endswith(f'_conf{confidence}_pooled'), args
