"""The EM report: schema, csv/markdown/plot files."""
import csv
import json
from types import SimpleNamespace

import pytest

from iaffinity_plugins.engine.report import (STEP_COLUMNS, build_report,
                                             errors_figure, miou_figure,
                                             plot_miou, read_report,
                                             report_markdown, step_summary,
                                             write_report)
from iaffinity_plugins.engine.report_hook import EMReportHook, ValReportHook


def _quality(miou):
    return dict(miou=miou, precision=miou + 10, labelled_fraction=50.0)


# Step 0 as a report of the earlier stage order has it (g_0 on the seeds,
# nothing mined at step 0); step 1 has mined labels.
RECORDS = [
    dict(step=0, quality=dict(seeds=_quality(30.0), unary=_quality(35.0),
                              refined=_quality(40.0), mined=None),
         energy_refined=0.2, energy_mined=None),
    dict(step=1, quality=dict(seeds=_quality(30.0), unary=_quality(42.0),
                              refined=_quality(45.0), mined=_quality(38.0)),
         energy_refined=0.15, energy_mined=0.1),
]


def test_report_schema():
    report = build_report(RECORDS, final={'mIoU': 44.5, 'aAcc': 90.0})
    assert report['seeds'] == dict(miou=30.0, precision=40.0,
                                   labelled_fraction=50.0)
    assert [set(step) for step in report['steps']] == [set(STEP_COLUMNS)] * 2
    assert [step['step'] for step in report['steps']] == [0, 1]
    assert report['steps'][1]['mined_precision'] == 48.0
    assert report['steps'][0]['mined_miou'] is None
    assert report['steps'][0]['energy_mined'] is None
    assert report['final'] == {'miou': 44.5}
    # Y_t without a labelled pixel has no precision: null, never NaN (the
    # JSON standard has no NaN).
    empty = dict(_quality(0.0), precision=float('nan'))
    report = build_report([dict(RECORDS[1], quality=dict(
        RECORDS[1]['quality'], mined=empty))])
    assert report['steps'][0]['mined_precision'] is None
    assert 'NaN' not in json.dumps(report)


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
        mined=None)), dict(RECORDS[1], quality=dict(
            seeds=with_errors(_quality(30.0), 5.0),
            unary=with_errors(_quality(42.0), 8.0),
            refined=with_errors(_quality(45.0), 9.0),
            mined=with_errors(_quality(38.0), 1.0)))]
    report = build_report(records)
    assert [row['labels'] for row in report['errors']] == [
        'seeds', 'step 0 unary', 'step 0 refined', 'step 1 unary',
        'step 1 refined', 'step 1 mined']
    assert [row['bg_as_fg'] for row in report['errors']] == [
        5.0, 6.0, 7.0, 8.0, 9.0, 1.0]
    assert report['errors'][0]['fg_right'] is None
    write_report(report, str(tmp_path))
    assert json.loads((tmp_path / 'report.json').read_text()) == report
    markdown = (tmp_path / 'report.md').read_text()
    assert '| step 0 refined | 7.0 | 0.0 | 1.0 | 2.0 | 3.0 | - |' in markdown
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
    assert [row['step'] for row in rows] == ['0', '1']
    assert [row['refined_miou'] for row in rows] == ['40.0', '45.0']
    # no mined labels at step 0: empty cells in the csv, '-' in markdown
    assert rows[0]['mined_miou'] == rows[0]['energy_mined'] == ''
    assert rows[1]['mined_miou'] == '38.0'
    markdown = (tmp_path / 'report.md').read_text()
    assert '| 0 | 35.00 | 40.00 | - | - | - | 0.20 | - |' in markdown
    assert '| 1 | 42.00 | 45.00 | 38.00 | 48.00 | 50.00 | 0.15 | 0.10 |' \
        in markdown
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


def _with_errors(quality, fg_as_bg):
    errors = dict(bg_as_fg=4.0, bg_unknown=6.0, fg_as_bg=fg_as_bg,
                  fg_wrong_class=20.0, fg_unknown=30.0,
                  fg_right=50.0 - fg_as_bg)
    return dict(quality, errors=errors)


ERROR_RECORDS = [
    dict(RECORDS[0], quality=dict(
        seeds=_with_errors(_quality(30.0), 10.0),
        unary=_with_errors(_quality(35.0), 12.0),
        refined=_with_errors(_quality(40.0), 8.0),
        mined=None)),
    dict(RECORDS[1], quality=dict(
        seeds=_with_errors(_quality(30.0), 10.0),
        unary=_with_errors(_quality(42.0), 9.0),
        refined=_with_errors(_quality(45.0), 7.0),
        mined=_with_errors(_quality(38.0), 5.0))),
]


def test_miou_plot_starts_at_the_seeds_with_whole_steps():
    """One point per step and curve, the seeds a star at step 0."""
    import matplotlib.pyplot as plt
    step_0 = dict(RECORDS[0], quality=dict(RECORDS[0]['quality'],
                                           mined=_quality(33.0)))
    figure = miou_figure(build_report([step_0, RECORDS[1], dict(
        RECORDS[1], step=2, quality=dict(RECORDS[1]['quality'],
                                         mined=_quality(41.0)))]))
    axis = figure.axes[0]
    lines = {line.get_label(): line for line in axis.get_lines()}
    assert list(lines['unary'].get_xdata()) == [0, 1, 2]
    assert list(lines['unary'].get_ydata()) == [35.0, 42.0, 42.0]
    assert list(lines['mined'].get_ydata()) == [33.0, 38.0, 41.0]
    assert list(lines['mined precision'].get_ydata()) == [43.0, 48.0, 51.0]
    assert list(lines['seeds'].get_xdata()) == [0]
    figure.canvas.draw()
    ticks = [tick for tick in axis.get_xticks()
             if axis.get_xlim()[0] <= tick <= axis.get_xlim()[1]]
    assert ticks == [0, 1, 2]
    plt.close(figure)


def test_error_plot_stacks_each_label_maps_pixels():
    import matplotlib.pyplot as plt
    import numpy as np
    figure = errors_figure(build_report(ERROR_RECORDS))
    objects, background = figure.axes
    labels = [tick.get_text() for tick in objects.get_xticklabels()]
    assert labels == ['seeds', 'step 0 unary', 'step 0 refined',
                      'step 1 unary', 'step 1 refined', 'step 1 mined']
    # Object pixels: right + lost + wrong class + unknown = 100 % per bar.
    tops = np.zeros(6)
    for bar in objects.patches:
        tops[round(bar.get_x() + bar.get_width() / 2)] = max(
            tops[round(bar.get_x() + bar.get_width() / 2)],
            bar.get_y() + bar.get_height())
    np.testing.assert_allclose(tops, 100.0)
    heights = [bar.get_height() for bar in background.patches]
    assert heights == [4.0] * 6 + [6.0] * 6
    plt.close(figure)


def test_step_summary_is_the_table_5_row():
    report = build_report(RECORDS)
    # No mined labels (a report of the earlier stage order): '-' cells.
    assert step_summary(report['steps'][0], report['seeds']) == (
        'step 0: mIoU seeds 30.0 | unary 35.0 | refined 40.0 | mined - '
        '(precision -, labelled - %) | energy refined 0.200, mined -')
    assert step_summary(report['steps'][1], report['seeds']) == (
        'step 1: mIoU seeds 30.0 | unary 42.0 | refined 45.0 | mined 38.0 '
        '(precision 48.0, labelled 50.0 %) | energy refined 0.150, mined '
        '0.100')
    # A later step without ground truth keeps its columns.
    unmeasured = build_report([dict(RECORDS[1], quality=dict.fromkeys(
        RECORDS[1]['quality']), energy_mined=None)])
    assert 'mined - (precision -' in step_summary(unmeasured['steps'][0],
                                                  unmeasured['seeds'])


def _report_hook_run(tmp_path, backend: str):
    """An EMReportHook after steps 0 and 1 of ERROR_RECORDS, on a runner
    stand-in whose visualiser has the one vis backend ``backend``."""
    from mmengine.logging import MMLogger
    from mmengine.visualization import Visualizer

    from iaffinity_plugins.engine.manifest import Manifest
    visualizer = Visualizer(
        name=f'report_hook_{backend}', save_dir=str(tmp_path / 'log'),
        vis_backends=[dict(type=backend)])
    loop = SimpleNamespace(records=[],
                           seeds_quality=ERROR_RECORDS[0]['quality']['seeds'],
                           manifest=Manifest(str(tmp_path / 'manifest.json')))
    runner = SimpleNamespace(work_dir=str(tmp_path), train_loop=loop,
                             visualizer=visualizer, rank=0,
                             logger=MMLogger.get_instance(
                                 f'report_hook_{backend}'))
    hook = EMReportHook(num_grid_images=0)
    hook._write_grid = lambda runner, num_steps: None
    for record in ERROR_RECORDS:
        loop.records.append(record)
        hook.after_em_step(runner, step=record['step'], record=record)
    return runner, hook


def test_em_report_hook_sends_steps_to_the_visualizer(tmp_path):
    """The scalars and figures reach every vis backend: with
    LocalVisBackend, vis_data/scalars.json holds the step values."""
    runner, hook = _report_hook_run(tmp_path, 'LocalVisBackend')
    hook.after_em_run(runner, ERROR_RECORDS, final={'mIoU': 33.0})
    vis_data = tmp_path / 'log' / 'vis_data'
    rows = [json.loads(line)
            for line in (vis_data / 'scalars.json').read_text().splitlines()]
    by_step = {}
    for row in rows:
        by_step.setdefault(row.pop('step'), {}).update(row)
    assert by_step[0]['seeds/miou'] == 30.0
    assert by_step[0]['step/refined_miou'] == 40.0
    assert 'step/energy_mined' not in by_step[0]
    assert by_step[0]['errors/step_0_unary/fg_as_bg'] == 12.0
    assert by_step[1]['step/refined_miou'] == 45.0
    assert by_step[1]['step/energy_mined'] == 0.1
    assert by_step[1]['errors/step_1_mined/fg_as_bg'] == 5.0
    assert 'errors/step_0_unary/fg_as_bg' not in by_step[1]
    assert by_step[1]['final/val_miou'] == 33.0
    assert sorted(path.name for path in (vis_data / 'vis_image').iterdir()
                  ) == ['report_errors_0.png', 'report_errors_1.png',
                        'report_miou_0.png', 'report_miou_1.png']
    for name in ('report_miou.png', 'report_errors.png'):
        assert (tmp_path / name).read_bytes()[:4] == b'\x89PNG'


def test_tensorboard_backend_gets_the_scalars(tmp_path):
    """A config's TensorboardVisBackend shows the run in TensorBoard."""
    pytest.importorskip('tensorboard')
    from tensorboard.backend.event_processing.event_accumulator import \
        EventAccumulator
    runner, _ = _report_hook_run(tmp_path, 'TensorboardVisBackend')
    runner.visualizer.close()
    events = EventAccumulator(str(tmp_path / 'log' / 'vis_data'))
    events.Reload()
    values = {event.step: event.value
              for event in events.Scalars('step/unary_miou')}
    assert values == {0: 35.0, 1: 42.0}
    assert 'report_miou' in events.Tags()['images']
