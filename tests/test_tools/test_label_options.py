"""tools/make_seeds.py and tools/mine_labels.py record their options in
``--out``'s options.json and refuse a folder made with other options."""
import json
from pathlib import Path
from typing import Callable, List

import pytest
from test_distributed_label_tools import (NUM_IMAGES, folder_bytes,
                                          mining_config)
from test_labels.test_seeds import (make_seeds, make_seeds_config,
                                    save_random_init)
from tool_scripts import load_tool

from iaffinity_plugins.labels.label_writer import (OPTIONS_FILE,
                                                   differing_options)


def refuses_changed_option(tool: Callable[[List[str]], dict],
                           args: List[str], changed: List[str], out: Path,
                           message: str) -> None:
    """``tool(args + changed)`` fails naming the changed option (in
    ``message``) and ``out``, whose files (labels and options.json) stay
    as the run with ``args`` wrote them."""
    before = folder_bytes(out)
    with pytest.raises(ValueError, match=message) as error:
        tool(args + changed)
    assert str(out) in str(error.value)
    assert folder_bytes(out) == before


def test_make_seeds_records_options_and_refuses_others(tmp_path):
    config = make_seeds_config(tmp_path)
    checkpoint = str(tmp_path / 'cam.pth')
    save_random_init(config, checkpoint)
    out = tmp_path / 'seeds'
    args = [config, checkpoint, '--out', str(out)]
    make_seeds.main(args)
    options = json.loads((out / OPTIONS_FILE).read_text())
    assert options['checkpoint'] == checkpoint
    assert options['seed_cfg'] == dict(type='psa', alpha_strong_bg=4,
                                       alpha_weak_bg=32)
    assert options['cam_cfg'] == dict(scales=[1.0, 0.5], flip=True)
    refuses_changed_option(
        make_seeds.main, args, ['--cfg-options', 'seed_cfg.alpha_weak_bg=16'],
        out, r'seed_cfg\.alpha_weak_bg: 32 -> 16')
    # the same options: resumed as before (every image already there)
    assert make_seeds.main(args)['skipped'] == 3


def test_mine_labels_records_options_and_refuses_others(tmp_path):
    config = mining_config(tmp_path)
    checkpoint = str(tmp_path / 'cam.pth')
    save_random_init(config, checkpoint)
    seeds = str(tmp_path / 'seeds')
    make_seeds.main([config, checkpoint, '--out', seeds])
    tool = load_tool('mine_labels.py')
    out = tmp_path / 'mined'
    # 'majority' needs no region classifier: nothing trains
    args = [config, '--labels', seeds, '--out', str(out), '--work-dir',
            str(tmp_path / 'work'), '--mode', 'majority']
    tool.main(args)
    options = json.loads((out / OPTIONS_FILE).read_text())
    assert (options['mode'], options['labels'], options['classifier']) == \
        ('majority', seeds, None)
    assert len(list(out.glob('*.png'))) == NUM_IMAGES
    refuses_changed_option(tool.main, args, ['--mode', 'none'], out,
                           r"mode: 'majority' -> 'none'")


def test_differing_options_names_nested_and_missing_keys():
    old = dict(mode='confirm', cam=dict(scales=[1.0], flip=True))
    new = dict(mode='confirm', cam=dict(scales=[1.0, 2.0]), ratio=0.8)
    assert differing_options(old, new) == [
        ('cam.flip', True, '(not set)'),
        ('cam.scales', [1.0], [1.0, 2.0]),
        ('ratio', '(not set)', 0.8)]
    assert differing_options(old, old) == []
