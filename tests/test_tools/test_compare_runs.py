"""tools/compare_runs.py on hand-written report.json files."""
import json

import pytest
from tool_scripts import load_tool


def step(number, refined, energy=0.05):
    return dict(step=number, unary_miou=refined - 2.0, refined_miou=refined,
                mined_miou=refined - 5.0, mined_precision=70.0 + number,
                mined_labelled_fraction=50.0, energy_refined=energy,
                energy_mined=None if energy is None else energy / 2)


def write_run(folder, steps, final, seeds=30.0):
    folder.mkdir()
    seeds = dict(miou=seeds, precision=40.0, labelled_fraction=75.0) \
        if seeds is not None else dict.fromkeys(
            ('miou', 'precision', 'labelled_fraction'))
    (folder / 'report.json').write_text(json.dumps(
        dict(seeds=seeds, steps=steps, final=dict(miou=final))))
    return str(folder)


def test_table_and_plot(tmp_path, capsys):
    ours = write_run(tmp_path / 'ours', [step(1, 40.0), step(2, 45.0)], 44.0)
    psa = write_run(tmp_path / 'psa',
                    [step(1, 41.0, energy=None), step(2, 39.0, None)], 36.0)
    full = write_run(tmp_path / 'full', [], 55.0, seeds=None)
    out = tmp_path / 'cmp'
    markdown = load_tool('compare_runs.py').main([
        ours, psa, '--out', str(out), '--names', 'ours', 'iterative PSA',
        '--full-reference', full])
    assert capsys.readouterr().out.strip() == markdown.strip()
    assert (out / 'comparison.md').read_text() == markdown
    assert (out / 'comparison_miou.png').read_bytes()[:4] == b'\x89PNG'
    lines = markdown.splitlines()
    assert '| run | step | unary mIoU | refined mIoU |' in markdown
    assert '| ours | seeds | - | - | 30.00 | 40.00 | 75.00 | - | - | - | - |' \
        in lines
    assert '| ours | 2 | 43.00 | 45.00 | 40.00 | 72.00 | 50.00 | 0.050 | ' \
        '0.025 | - | - |' in lines
    assert '| iterative PSA | 1 | 39.00 | 41.00 | 36.00 | 71.00 | 50.00 | ' \
        '- | - | - | - |' in lines
    # weak/full ratio in percent of the reference's final val mIoU
    assert '| ours | final | - | - | - | - | - | - | - | 44.00 | 80.00 |' \
        in lines
    assert '| iterative PSA | final | - | - | - | - | - | - | - | 36.00 | ' \
        '65.45 |' in lines
    assert '| full (reference) | final | - | - | - | - | - | - | - | ' \
        '55.00 | 100.00 |' in lines


def test_without_reference_and_bad_inputs(tmp_path):
    tool = load_tool('compare_runs.py')
    run = write_run(tmp_path / 'run', [step(1, 40.0)], None)
    markdown = tool.main([run, '--out', str(tmp_path / 'cmp')])
    assert '| run | final | - | - | - | - | - | - | - | - | - |' in markdown
    with pytest.raises(ValueError, match='2 names for 1 work dirs'):
        tool.main([run, '--out', str(tmp_path / 'cmp'), '--names', 'a', 'b'])
    with pytest.raises(FileNotFoundError, match='missing'):
        tool.main([str(tmp_path / 'missing')])
    bad = tmp_path / 'bad'
    bad.mkdir()
    (bad / 'report.json').write_text(json.dumps(
        dict(seeds={}, steps=[dict(step=1)], final={})))
    with pytest.raises(ValueError, match=r"final.miou.*steps\[0\].unary_miou"):
        tool.main([str(bad)])
