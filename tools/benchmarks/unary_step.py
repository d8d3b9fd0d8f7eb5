"""Retrain the unary net of a finished EM step with a variant config.

Run from the repository root on a finished run (CONFIG: the config it was
trained with, WORK_DIR: its work dir)::

    python tools/benchmarks/unary_step.py CONFIG WORK_DIR [--step T]
        [--label-dir DIR] [--compare-with STAGE]
        [--cfg-options KEY=VALUE ...]

e.g. ``--step 1 --cfg-options train_cfg.unary.optim_wrapper.optimizer.lr=1e-3``
or ``--step 1 --label-dir WORK_DIR/step_0/labels`` (f_1 on Y_0 instead of
the refined labels).

Only step T's unary net f_T is retrained, as the EM loop trains it: its
stage config ``train_cfg.unary`` (``CONFIG`` with ``--cfg-options``; with
``train_cfg.unary_warm_start`` and T >= 1 its entries, starting from the
run's f_{T-1}) on, by
default, the labels the loop trains f_T on (``step_{T-1}/refined``, or
``step_{T-1}/labels`` with ``train_cfg.unary_labels='mined'``; the seeds
``step_0/seeds`` for T = 0). Everything goes to a fresh
``WORK_DIR/benchmarks/unary_step<T>_<hash>`` (the hash of the variant's
stage config and labels; rerunning resumes there): the stage's work dir
``unary/``, the variant's output on the training images (``unary_labels/``,
the tag-restricted argmax, as the loop's ``step_T/unary_labels`` stage
writes it), ``result.json`` and ``row.md``.

Prints a markdown table row: the mIoU of the run's f_T output
(``WORK_DIR/step_T/unary_labels``) and of the variant's, their difference;
of the pixels the run's f_T gets wrong (against the ground truth) how many
the variant gets right (fixed), of those it gets right how many the variant
gets wrong (broken); where the variant's errors are (percent of the
ground-truth background: labelled foreground; of the foreground: labelled
background, or another class). Without options the row measures the run's
own recipe (same seed and labels): it reproduces f_T, difference 0 (bit for
bit on the CPU; GPU kernels need not be deterministic). ``--compare-with``
names another label stage of the run's manifest to compare with instead,
e.g. ``step_0/unary_labels`` (f_0) on a run stopped after step 0.
"""
import math
import os.path as osp
from typing import List, Optional, Tuple

import iaffinity_plugins  # noqa: F401  (before mmseg: compat + registration)
from iaffinity_plugins.engine import stage_benchmark as bench
from iaffinity_plugins.engine.checkpoint import load_model
from iaffinity_plugins.evaluation.label_metrics import evaluate_label_dir
from iaffinity_plugins.labels.refinement import write_label_maps

HEADER = ('| run | step | labels | variant | run f_T mIoU | variant mIoU | '
          'variant - run | fixed (of run wrong) | broken (of run right) | '
          'bg as fg (% of bg) | fg as bg (% of fg) | fg wrong class '
          '(% of fg) |')
# The error breakdown columns (``label_metrics.error_breakdown``).
ERROR_COLUMNS = ('bg_as_fg', 'fg_as_bg', 'fg_wrong_class')
# Shown in the variant cell without this prefix.
UNARY_PREFIX = 'train_cfg.unary.'


def _percent(value: Optional[float]) -> str:
    """A share in percent; ``-`` for none (NaN, or null from JSON)."""
    return '-' if value is None or math.isnan(value) else f'{value:.2f}'


def format_row(result: dict) -> str:
    """One markdown row of :data:`HEADER`."""
    return bench.markdown_row(
        *bench.variant_cells(result), f"{result['run_miou']:.2f}",
        f"{result['variant_miou']:.2f}",
        f"{result['variant_miou'] - result['run_miou']:+.2f}",
        *bench.fix_break_cells(result['pixels']),
        *(_percent(result['errors'][name]) for name in ERROR_COLUMNS))


def run(config: str, work_dir: str, step: int = 1,
        label_dir: Optional[str] = None,
        cfg_options: Optional[dict] = None,
        compare_with: Optional[str] = None) -> dict:
    """Retrain step ``step``'s unary net and measure it (module docstring);
    returns the result (also in ``result.json``)."""
    cfg = bench.load_run_config(config, cfg_options, work_dir)
    compare_with = compare_with or f'step_{step}/unary_labels'  # f_T's
    bench.stage_outputs(work_dir, compare_with)
    run_output = osp.join(work_dir, *compare_with.split('/'))
    labels = bench.check_label_dir(label_dir or bench.unary_training_labels(
        work_dir, step, cfg.train_cfg.get('unary_labels', 'refined')))
    loop_cfg = cfg.train_cfg.to_dict()
    stage_cfg, init_weights = loop_cfg['unary'], None
    if loop_cfg.get('unary_warm_start') is not None and step > 0:
        # As the loop's f_T: from f_{T-1}'s weights with these entries.
        stage_cfg.update(loop_cfg['unary_warm_start'])
        init_weights = bench.stage_weights(work_dir, f'step_{step - 1}/unary')
    out_dir = bench.benchmark_dir(work_dir, f'unary_step{step}', stage_cfg,
                                  labels)
    weights = bench.train_variant(stage_cfg, cfg, out_dir, 'unary', step,
                                  labels, init_weights)
    dataset = bench.build_dataset(cfg)
    unary = load_model(stage_cfg['model'], weights, bench.default_device())
    output = osp.join(out_dir, 'unary_labels')
    # As the loop's step_T/unary_labels stage: the tag-restricted argmax.
    write_label_maps(unary, None, dataset, dict(unary=output),
                     short_edge=cfg.train_cfg.get('infer_short_edge'))
    run_quality = evaluate_label_dir(run_output, dataset)
    quality = evaluate_label_dir(output, dataset)
    result = dict(
        run=work_dir, step=step, labels=osp.relpath(labels, work_dir),
        compared_with=compare_with,
        variant=bench.variant_name(cfg_options, UNARY_PREFIX),
        out_dir=out_dir, run_miou=run_quality['miou'],
        variant_miou=quality['miou'],
        pixels=bench.fix_break_counts(run_output, output, dataset),
        errors=quality['errors'], run_errors=run_quality['errors'])
    bench.write_result(out_dir, result, HEADER, format_row(result))
    return result


def main(argv: Optional[List[str]] = None) -> Tuple[dict, str]:
    parser = bench.benchmark_parser(__doc__.splitlines()[0], 'unary net f_T')
    parser.add_argument('--compare-with', help='the label stage of the run '
                        'to compare with (default: step_T/unary_labels)')
    args = bench.parse_benchmark_args(parser, argv)
    result = run(args.config, args.work_dir, args.step, args.label_dir,
                 args.cfg_options, args.compare_with)
    row = format_row(result)
    bench.print_result(HEADER, row, result['out_dir'])
    return result, row


if __name__ == '__main__':
    main()
