"""Report hooks: ``EMReportHook`` writes the EM run's report after every EM
step; ``ValReportHook`` writes the report of an ordinary (e.g. fully
supervised) run, whose only entry is the final val mIoU."""
import os.path as osp
from typing import Dict, List, Optional

import numpy as np
from mmengine.dist import master_only
from mmengine.hooks import Hook
from PIL import Image

from ..registry import HOOKS
from .report import (build_report, plot_errors, plot_label_grid, plot_miou,
                     write_report)


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
    ``errors/<labels>/<column>`` at each EM step.

    Args:
        num_grid_images (int): Rows of the visual grid (the first training
            images by id).
    """

    priority = 'LOW'
    FIGURES = ('report_miou', 'report_errors', 'report_grid')

    def __init__(self, num_grid_images: int = 4) -> None:
        self.num_grid_images = num_grid_images

    @master_only
    def after_em_step(self, runner, step: int, record: dict) -> None:
        report = self._write(runner, runner.train_loop.records, final=None)
        self._visualize(runner, report, step + 1)

    @master_only
    def after_em_run(self, runner, records: List[dict],
                     final: Optional[dict]) -> None:
        report = self._write(runner, records, final)
        if report['final']['miou'] is not None:
            runner.visualizer.add_scalars(
                {'final/val_miou': report['final']['miou']},
                step=len(records))

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
        if step == 1:
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

        columns = [('seeds', label_paths(loop.labels_dir(0)))]
        for step in range(num_steps):
            prefix = osp.join(runner.work_dir, f'step_{step}')
            columns += [
                (f'unary {step + 1}',
                 label_paths(osp.join(prefix, 'unary_labels'))),
                (f'refined {step + 1}',
                 label_paths(osp.join(prefix, 'refined'))),
                (f'mined {step + 1}', label_paths(loop.labels_dir(step + 1))),
            ]
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
