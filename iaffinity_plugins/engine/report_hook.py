"""Report hooks: ``EMReportHook`` writes the EM run's report after every EM
step and closes the run's console with a summary (:func:`run_summary`);
``ValReportHook`` writes the report of an ordinary (e.g. fully supervised)
run, whose only entry is the final val mIoU."""
import math
import os.path as osp
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.dist import master_only
from mmengine.hooks import Hook
from PIL import Image

from ..registry import HOOKS
from .console import announce, format_duration
from .report import (build_report, format_value, plot_errors,
                     plot_label_grid, plot_miou, read_report, write_report)


def _numbers(prefix: str, values: Dict) -> Dict[str, float]:
    """``{prefix/key: value}`` for the numeric, non-None entries (the
    step number itself excluded)."""
    return {f'{prefix}/{key}': float(value) for key, value in values.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)
            and key != 'step'}


def _read_rgb(path: str) -> np.ndarray:
    """A PNG as an (H, W, 3) uint8 RGB array, as visualisers take it."""
    with Image.open(path) as image:
        return np.asarray(image.convert('RGB'))


def best_labels(report: dict) -> Optional[Tuple[str, float]]:
    """``(label map, mIoU)`` of the best label map of the report's steps,
    e.g. ``('step 2 refined', 45.1)``; None without a measured one."""
    measured = [(f"step {step['step']} {name}", step[f'{name}_miou'])
                for step in report['steps']
                for name in ('unary', 'refined', 'mined')
                if step[f'{name}_miou'] is not None
                and not math.isnan(step[f'{name}_miou'])]
    return max(measured, key=lambda item: item[1], default=None)


def reference_summary(final_miou: Optional[float],
                      full_reference: Optional[str]) -> str:
    """The fully supervised reference beside the final val mIoU, '' without
    one.

    Args:
        final_miou (float, optional): The run's final val mIoU.
        full_reference (str, optional): The work dir (or ``report.json``)
            of a fully supervised run of the same networks and data
            (``ValReportHook``, e.g. ``ablations/fully_supervised_photo.py``).

    Returns:
        str: ``'; fully supervised 80.30 (weak/full 0.80)'``, or where the
        reference has no report yet, the path and how to make it.
    """
    if full_reference is None:
        return ''
    try:
        full_miou = read_report(full_reference)['final']['miou']
    except (FileNotFoundError, ValueError) as error:
        return f'; fully supervised reference: none yet ({error})'
    if full_miou is None:
        return (f'; fully supervised reference {full_reference}: no val '
                'mIoU in its report')
    ratio = ('' if final_miou is None or not full_miou else
             f' (weak/full {final_miou / full_miou:.2f})')
    return f'; fully supervised {full_miou:.2f}{ratio}'


def run_summary(report: dict, seconds: float, report_file: str,
                plots: Sequence[str], final_weights: Optional[str],
                full_reference: Optional[str] = None) -> List[str]:
    """The closing console lines of an EM run.

    Args:
        report (dict): The run's :func:`build_report` dict.
        seconds (float): How long the run took.
        report_file (str): Path of ``report.md``.
        plots (Sequence[str]): Paths of the figures written.
        final_weights (str, optional): The final unary net's weights
            (None when no final net was trained).
        full_reference (str, optional): A fully supervised run's work dir,
            whose val mIoU is given beside the final one
            (:func:`reference_summary`).

    Returns:
        list[str]: The final val mIoU (and the fully supervised one) and the
        time taken; the seeds' and the best labels' mIoU (on the training
        images); where the report, the plots and the final weights are.
    """
    best = best_labels(report)
    labels = f"seeds {format_value(report['seeds']['miou'], 1)}"
    if best is not None:
        labels += f' -> best {best[1]:.1f} ({best[0]})'
    final_miou = report['final']['miou']
    return [
        f'EM run finished in {format_duration(seconds)}: final unary net, '
        f'val mIoU {format_value(final_miou)}'
        f'{reference_summary(final_miou, full_reference)}',
        f'labels, mIoU on the training images: {labels}',
        f'report: {report_file}',
        f"plots: {', '.join(plots) or '-'}",
        f"final weights: {final_weights or '- (train_final=False)'}",
    ]


@HOOKS.register_module()
class EMReportHook(Hook):
    """Report files, plots and a visual grid of an EM run, also sent to the
    runner's visualiser.

    Fires on the custom hook stages of ``IterativeAffinityLoop``
    (``after_em_step``, ``after_em_run``), so a killed run still leaves the
    report of every finished step. Written to the work dir:
    ``report.{json,csv,md}``, ``report_miou.png`` (labels per step, seeds at
    step 0), ``report_errors.png`` (where each label map's pixels go) and
    ``report_grid.png`` (the paper's Fig. 6). The same numbers and figures
    go to the runner's visualiser, i.e. to every ``vis_backends`` entry of
    the config (``LocalVisBackend``: ``<log dir>/vis_data/scalars.json``;
    ``TensorboardVisBackend``: TensorBoard event files): scalars
    ``seeds/<metric>`` at step 0, ``step/<column>`` and
    ``errors/<labels>/<column>`` at each EM step (0 .. T).

    When the run ends, the console's last lines are :func:`run_summary`'s
    (timed from ``before_run``).

    Args:
        num_grid_images (int): Rows of the visual grid (the first training
            images by id).
        full_reference (str, optional): The work dir of a fully supervised
            run of the same networks and data; the summary gives its val
            mIoU beside the final one, or says that it has not been run.
    """

    priority = 'LOW'
    FIGURES = ('report_miou', 'report_errors', 'report_grid')

    def __init__(self, num_grid_images: int = 4,
                 full_reference: Optional[str] = None) -> None:
        self.num_grid_images = num_grid_images
        self.full_reference = full_reference
        self._start = time.monotonic()

    def before_run(self, runner) -> None:
        self._start = time.monotonic()

    @master_only
    def after_em_step(self, runner, step: int, record: dict) -> None:
        report = self._write(runner, runner.train_loop.records, final=None)
        self._visualize(runner, report, step)

    @master_only
    def after_em_run(self, runner, records: List[dict],
                     final: Optional[dict]) -> None:
        report = self._write(runner, records, final)
        if report['final']['miou'] is not None:
            # at the last EM step's x (step 0 when no step finished)
            runner.visualizer.add_scalars(
                {'final/val_miou': report['final']['miou']},
                step=records[-1]['step'] if records else 0)
        self._announce_summary(runner, report)

    def _announce_summary(self, runner, report: dict) -> None:
        """:func:`run_summary` as the console's last lines."""
        final = runner.train_loop.manifest.record('final/unary')
        weights = None if final is None else final['outputs']['weights']
        plots = [path for path in (osp.join(runner.work_dir, name + '.png')
                                   for name in self.FIGURES)
                 if osp.exists(path)]
        for line in run_summary(report, time.monotonic() - self._start,
                                osp.join(runner.work_dir, 'report.md'),
                                plots, weights, self.full_reference):
            announce(runner.logger, f'[iaffinity] {line}')

    def _write(self, runner, records: List[dict],
               final: Optional[dict]) -> dict:
        report = build_report(records, final,
                              seeds=runner.train_loop.seeds_quality)
        write_report(report, runner.work_dir)
        plot_miou(report, osp.join(runner.work_dir, 'report_miou.png'))
        plot_errors(report, osp.join(runner.work_dir, 'report_errors.png'))
        self._write_grid(runner, len(records))
        return report

    def _visualize(self, runner, report: dict, step: int) -> None:
        """The step's numbers and the current figures to the visualiser."""
        visualizer = runner.visualizer
        if step == 0:
            visualizer.add_scalars(_numbers('seeds', report['seeds']),
                                   step=0)
        scalars = _numbers('step', report['steps'][-1])
        for row in report['errors']:
            if row['labels'].startswith(f'step {step} '):
                scalars.update(_numbers(
                    'errors/' + row['labels'].replace(' ', '_'), row))
        visualizer.add_scalars(scalars, step=step)
        for name in self.FIGURES:
            path = osp.join(runner.work_dir, name + '.png')
            if osp.exists(path):
                visualizer.add_image(name, _read_rgb(path), step=step)

    def _write_grid(self, runner, num_steps: int) -> None:
        loop = runner.train_loop
        dataset = loop.dataset
        infos = sorted((dataset.get_data_info(i) for i in range(len(dataset))),
                       key=lambda info: info['img_id'])[:self.num_grid_images]
        if not infos:
            return

        def label_paths(folder: str) -> list:
            return [osp.join(folder, info['img_id'] + '.png')
                    for info in infos]

        columns = [('seeds', label_paths(loop.seeds_dir()))]
        for step in range(num_steps):
            # In the order of the step: f_t's output, Y_t mined from it,
            # the refined labels.
            columns.append((f'unary {step}',
                            label_paths(loop.unary_output_dir(step))))
            columns.append((f'mined {step}', label_paths(
                loop.confident_labels_dir(step))))
            columns.append((f'refined {step}',
                            label_paths(loop.refined_dir(step))))
        columns.append(('ground truth',
                        [info.get('gt_seg_map_path') for info in infos]))
        plot_label_grid([info['img_path'] for info in infos], columns,
                        osp.join(runner.work_dir, 'report_grid.png'))


@HOOKS.register_module()
class ValReportHook(Hook):
    """``report.json`` (``report.md``, ``report.csv``) of a run without EM.

    After every validation the run's report is rewritten with no seeds and
    no steps, and the val metrics as ``final`` (:func:`build_report`), so a
    plain mmseg training such as the fully supervised reference
    (``configs/iaffinity/ablations/fully_supervised_*.py``) can be read by
    ``tools/compare_runs.py --full-reference``.
    """

    priority = 'LOW'

    @master_only
    def after_val_epoch(self, runner,
                        metrics: Optional[Dict[str, float]] = None) -> None:
        """Rewrite the report with ``metrics['mIoU']`` as the final mIoU."""
        if not metrics or 'mIoU' not in metrics:
            raise KeyError('ValReportHook: the val evaluator must report '
                           "'mIoU' (an IoUMetric), got "
                           f'{sorted(metrics or {})}')
        write_report(build_report([], final=metrics), runner.work_dir)
