"""The EM report: schema, csv/markdown/plot files."""
import csv
import json
from types import SimpleNamespace

import pytest

from iaffinity_plugins.engine.report import (STEP_COLUMNS, build_report,
                                             plot_miou, read_report,
                                             report_markdown, write_report)
from iaffinity_plugins.engine.report_hook import ValReportHook


def _quality(miou):
    return dict(miou=miou, precision=miou + 10, labelled_fraction=50.0)


RECORDS = [
    dict(step=1, quality=dict(seeds=_quality(30.0), unary=_quality(35.0),
                              refined=_quality(40.0), mined=_quality(38.0)),
         energy_refined=0.2, energy_mined=0.1),
    dict(step=2, quality=dict(seeds=_quality(30.0), unary=_quality(42.0),
                              refined=_quality(45.0), mined=None),
         energy_refined=None, energy_mined=None),
]


def test_report_schema():
    report = build_report(RECORDS, final={'mIoU': 44.5, 'aAcc': 90.0})
    assert report['seeds'] == dict(miou=30.0, precision=40.0,
                                   labelled_fraction=50.0)
    assert [set(step) for step in report['steps']] == [set(STEP_COLUMNS)] * 2
    assert report['steps'][0]['mined_precision'] == 48.0
    assert report['steps'][1]['mined_miou'] is None
    assert report['final'] == {'miou': 44.5}


def test_report_error_table_covers_every_measured_label_map(tmp_path):
    def with_errors(quality, bg_as_fg):
        errors = dict(bg_as_fg=bg_as_fg, bg_unknown=0.0, fg_as_bg=1.0,
                      fg_wrong_class=2.0, fg_unknown=3.0,
                      fg_right=float('nan'))
        return dict(quality, errors=errors)

    records = [dict(RECORDS[0], quality=dict(
        seeds=with_errors(_quality(30.0), 5.0),
        unary=with_errors(_quality(35.0), 6.0),
        refined=with_errors(_quality(40.0), 7.0),
        mined=None))]
    report = build_report(records)
    assert [row['labels'] for row in report['errors']] == [
        'seeds', 'step 1 unary', 'step 1 refined']
    assert [row['bg_as_fg'] for row in report['errors']] == [5.0, 6.0, 7.0]
    assert report['errors'][0]['fg_right'] is None
    write_report(report, str(tmp_path))
    assert json.loads((tmp_path / 'report.json').read_text()) == report
    markdown = (tmp_path / 'report.md').read_text()
    assert '| step 1 refined | 7.0 | 0.0 | 1.0 | 2.0 | 3.0 | - |' in markdown
    # Records from before the breakdown existed give no table.
    assert build_report(RECORDS)['errors'] == []
    assert 'Where the pixels go' not in report_markdown(build_report(RECORDS))


def test_report_without_steps_keeps_the_seeds_quality():
    """num_steps=0 (seeds, then the final net): the seeds' quality comes
    from the seeds stage, not from a step record."""
    report = build_report([], final={'mIoU': 20.0}, seeds=_quality(31.0))
    assert report['seeds'] == dict(miou=31.0, precision=41.0,
                                   labelled_fraction=50.0)
    assert report['steps'] == [] and report['final'] == {'miou': 20.0}
    assert build_report([])['seeds'] == dict(
        miou=None, precision=None, labelled_fraction=None)


def test_report_files(tmp_path):
    report = build_report(RECORDS)
    write_report(report, str(tmp_path))
    plot_miou(report, str(tmp_path / 'plot.png'))
    assert json.loads((tmp_path / 'report.json').read_text()) == report
    rows = list(csv.DictReader((tmp_path / 'report.csv').open()))
    assert [row['refined_miou'] for row in rows] == ['40.0', '45.0']
    markdown = (tmp_path / 'report.md').read_text()
    assert '| 1 | 35.00 | 40.00 | 38.00 |' in markdown
    assert (tmp_path / 'plot.png').read_bytes()[:4] == b'\x89PNG'


def test_read_report_and_val_report_hook(tmp_path):
    write_report(build_report(RECORDS, final={'mIoU': 44.5}), str(tmp_path))
    assert read_report(str(tmp_path)) == read_report(
        str(tmp_path / 'report.json'))
    # a run without EM steps: only the final val mIoU
    run = tmp_path / 'full'
    run.mkdir()
    ValReportHook().after_val_epoch(SimpleNamespace(work_dir=str(run)),
                                    {'mIoU': 61.5, 'aAcc': 90.0})
    report = read_report(str(run))
    assert report['steps'] == [] and report['final'] == {'miou': 61.5}
    assert set(report['seeds'].values()) == {None}
    with pytest.raises(KeyError, match='mIoU'):
        ValReportHook().after_val_epoch(
            SimpleNamespace(work_dir=str(run)), {'aAcc': 90.0})
