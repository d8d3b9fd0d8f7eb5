"""The closing console lines of an EM run (EMReportHook.after_em_run)."""
import logging
from types import SimpleNamespace

from mmengine.logging import MMLogger
from mmengine.visualization import Visualizer

from iaffinity_plugins.engine.console import format_duration, quiet_console
from iaffinity_plugins.engine.manifest import Manifest
from iaffinity_plugins.engine.report import build_report, write_report
from iaffinity_plugins.engine.report_hook import (EMReportHook, best_labels,
                                                  run_summary)


def _quality(miou):
    return dict(miou=miou, precision=miou + 10, labelled_fraction=50.0)


RECORDS = [
    dict(step=1, quality=dict(seeds=_quality(30.0), unary=_quality(35.0),
                              refined=_quality(47.5), mined=_quality(38.0)),
         energy_refined=0.2, energy_mined=0.1),
    dict(step=2, quality=dict(seeds=_quality(30.0), unary=_quality(42.0),
                              refined=_quality(float('nan')), mined=None),
         energy_refined=None, energy_mined=None),
]


def test_format_duration():
    assert format_duration(41.6) == '42 s'
    assert format_duration(725) == '12 min 05 s'
    assert format_duration(2 * 3600 + 3 * 60 + 59) == '2 h 03 min'


def test_best_labels_skips_unmeasured_maps():
    assert best_labels(build_report(RECORDS)) == ('step 1 refined', 47.5)
    assert best_labels(build_report([])) is None


def test_run_summary_lines():
    report = build_report(RECORDS, final={'mIoU': 44.5})
    assert run_summary(report, 725, 'w/report.md', ['w/a.png', 'w/b.png'],
                       'w/final/unary/final_weights.pth') == [
        'EM run finished in 12 min 05 s: final unary net, val mIoU 44.50',
        'labels, mIoU on the training images: seeds 30.0 -> best 47.5 '
        '(step 1 refined)',
        'report: w/report.md',
        'plots: w/a.png, w/b.png',
        'final weights: w/final/unary/final_weights.pth']
    # no ground truth, no val loop, no final net
    lines = run_summary(build_report([]), 3, 'w/report.md', [], None)
    assert lines[0].endswith('val mIoU -')
    assert lines[1].endswith('seeds -')
    assert lines[3:] == ['plots: -', 'final weights: - (train_final=False)']


def test_the_run_ends_with_the_summary_and_existing_paths(tmp_path, capsys):
    """The summary is the console's last lines, even with the run's quiet
    console (QuietConsoleRunner), and every path it names exists."""
    logger = MMLogger.get_instance('run_summary_test',
                                   log_file=str(tmp_path / 'run.log'))
    quiet_console(logger)
    weights = tmp_path / 'final' / 'unary' / 'final_weights.pth'
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b'weights')
    manifest = Manifest(str(tmp_path / 'manifest.json'))
    manifest.mark_done('final/unary', 'hash', outputs=dict(
        weights=str(weights)))
    loop = SimpleNamespace(records=RECORDS, manifest=manifest,
                           seeds_quality=RECORDS[0]['quality']['seeds'])
    runner = SimpleNamespace(
        work_dir=str(tmp_path), train_loop=loop, logger=logger, rank=0,
        visualizer=Visualizer(name='run_summary_test',
                              save_dir=str(tmp_path / 'log')))
    hook = EMReportHook(num_grid_images=0)
    hook._write_grid = lambda runner, num_steps: None
    hook.before_run(runner)
    hook.after_em_run(runner, RECORDS, final={'mIoU': 44.5})
    lines = capsys.readouterr().out.splitlines()
    assert lines[-5].startswith('[iaffinity] EM run finished in ')
    assert lines[-5].endswith(' s: final unary net, val mIoU 44.50')
    assert lines[-4] == ('[iaffinity] labels, mIoU on the training images: '
                         'seeds 30.0 -> best 47.5 (step 1 refined)')
    paths = {line.split(': ', 1)[0]: line.split(': ', 1)[1].split(', ')
             for line in lines[-3:]}
    assert paths == {
        '[iaffinity] report': [str(tmp_path / 'report.md')],
        '[iaffinity] plots': [str(tmp_path / 'report_miou.png')],
        '[iaffinity] final weights': [str(weights)]}
    assert all((tmp_path / path).is_file()
               for names in paths.values() for path in names)
    for handler in logger.handlers:
        if isinstance(handler, logging.FileHandler):
            handler.flush()
    assert 'EM run finished in' in (tmp_path / 'run.log').read_text()


def test_run_summary_gives_the_fully_supervised_reference(tmp_path):
    report = build_report(RECORDS, final={'mIoU': 44.5})
    reference = tmp_path / 'fully_supervised'
    lines = run_summary(report, 725, 'w/report.md', [], None,
                        str(reference))
    # not run yet: the summary says where it looked
    assert 'fully supervised reference: none yet' in lines[0]
    assert str(reference) in lines[0]
    reference.mkdir()
    write_report(build_report([], final={'mIoU': 80.0}), str(reference))
    lines = run_summary(report, 725, 'w/report.md', [], None,
                        str(reference))
    assert lines[0] == ('EM run finished in 12 min 05 s: final unary net, '
                        'val mIoU 44.50; fully supervised 80.00 '
                        '(weak/full 0.56)')
    # without a reference the line is as before
    assert run_summary(report, 725, 'w/report.md', [], None)[0].endswith(
        'val mIoU 44.50')
