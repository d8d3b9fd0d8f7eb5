"""Retrain the pairwise net of a finished EM step with a variant config.

Run from the repository root on a finished run (CONFIG: the config it was
trained with, WORK_DIR: its work dir)::

    python tools/benchmarks/pairwise.py CONFIG WORK_DIR [--step T]
        [--label-dir DIR] [--energy-samples N] [--cfg-options KEY=VALUE ...]

e.g. ``--cfg-options train_cfg.pairwise.model.head.init_cfg.std=0.1
train_cfg.pairwise.optim_wrapper.optimizer.lr=5e-3`` (issue #22: does the
SPN move the unary output at all?).

Only step T's pairwise stage is retrained, as the EM loop trains g_T: its
config (``CONFIG`` with ``--cfg-options``), the unary net f_T that
``WORK_DIR``'s manifest records for ``step_T/unary`` filled in, the run's
superpixel cache, and by default the labels the loop trains g_T on (Y_T:
``step_T/labels``; ``--label-dir WORK_DIR/step_0/seeds`` for the paper's
g_0 on the seeds). Everything goes to
a fresh ``WORK_DIR/benchmarks/pairwise_step<T>_<hash>`` (the hash of the
variant's stage config and labels; rerunning resumes there): the stage's
work dir ``pairwise/``, f_T's and the refined labels of the training images
(``unary_labels/``, ``refined/``), ``result.json`` and ``row.md``.

Prints a markdown table row: unary and refined mIoU and their difference;
of the pixels f_T's output gets wrong (against the ground truth) how many
the refinement fixes, of those it gets right how many it breaks; the energy
J of the refined labels and of the training labels (Table 7, the loop's
fixed image sample). Without options the row measures the run's own recipe
(same seed, unary and labels), the baseline of the variants.
"""
import os.path as osp
from typing import List, Optional, Tuple

import iaffinity_plugins  # noqa: F401  (before mmseg: compat + registration)
from iaffinity_plugins.engine import stage_benchmark as bench
from iaffinity_plugins.engine.checkpoint import load_model
from iaffinity_plugins.evaluation.energy import mean_energy
from iaffinity_plugins.evaluation.label_metrics import evaluate_label_dir
from iaffinity_plugins.labels.refinement import write_label_maps

HEADER = ('| run | step | labels | variant | unary mIoU | refined mIoU | '
          'refined - unary | fixed (of unary wrong) | broken (of unary '
          'right) | J refined | J labels |')
# Shown in the variant cell without this prefix.
PAIRWISE_PREFIX = 'train_cfg.pairwise.'


def _energy(value: Optional[float]) -> str:
    return '-' if value is None else f'{value:.4f}'


def format_row(result: dict) -> str:
    """One markdown row of :data:`HEADER`."""
    return bench.markdown_row(
        *bench.variant_cells(result), f"{result['unary_miou']:.2f}",
        f"{result['refined_miou']:.2f}",
        f"{result['refined_miou'] - result['unary_miou']:+.2f}",
        *bench.fix_break_cells(result['pixels']),
        _energy(result['energy_refined']), _energy(result['energy_labels']))


def run(config: str, work_dir: str, step: int = 1,
        label_dir: Optional[str] = None,
        cfg_options: Optional[dict] = None,
        energy_samples: Optional[int] = None) -> dict:
    """Retrain step ``step``'s pairwise net and measure it (module
    docstring); returns the result (also in ``result.json``)."""
    cfg = bench.load_run_config(config, cfg_options, work_dir)
    stage_cfg = bench.run_pairwise_stage_cfg(cfg, work_dir, step)
    labels = bench.check_label_dir(label_dir
                                   or bench.pairwise_training_labels(work_dir, step))
    out_dir = bench.benchmark_dir(work_dir, f'pairwise_step{step}',
                                  stage_cfg, labels)
    weights = bench.train_variant(stage_cfg, cfg, out_dir, 'pairwise', step,
                                  labels)
    dataset = bench.build_dataset(cfg)
    refiner = load_model(stage_cfg['model'], weights, bench.default_device())
    out_dirs = dict(unary=osp.join(out_dir, 'unary_labels'),
                    refined=osp.join(out_dir, 'refined'))
    # The refiner computes f_T's probabilities itself: one forward gives
    # both maps.
    short_edge = cfg.train_cfg.get('infer_short_edge')
    write_label_maps(refiner.unary, refiner, dataset, out_dirs,
                     short_edge=short_edge)
    if energy_samples is None:
        energy_samples = cfg.train_cfg.get('energy_samples', 100)
    result = dict(
        run=work_dir, step=step, labels=osp.relpath(labels, work_dir),
        variant=bench.variant_name(cfg_options, PAIRWISE_PREFIX),
        out_dir=out_dir,
        unary_miou=evaluate_label_dir(out_dirs['unary'], dataset)['miou'],
        refined_miou=evaluate_label_dir(out_dirs['refined'],
                                        dataset)['miou'],
        pixels=bench.fix_break_counts(out_dirs['unary'], out_dirs['refined'],
                                      dataset),
        energy_refined=mean_energy(refiner, dataset, out_dirs['refined'],
                                   energy_samples, short_edge),
        energy_labels=mean_energy(refiner, dataset, labels, energy_samples,
                                  short_edge))
    bench.write_result(out_dir, result, HEADER, format_row(result))
    return result


def main(argv: Optional[List[str]] = None) -> Tuple[dict, str]:
    parser = bench.benchmark_parser(__doc__.splitlines()[0],
                                    'pairwise net g_T')
    parser.add_argument('--energy-samples', type=int, help='images of the '
                        "energy J (default: the config's energy_samples; 0: "
                        'no J)')
    args = bench.parse_benchmark_args(parser, argv)
    result = run(args.config, args.work_dir, args.step, args.label_dir,
                 args.cfg_options, args.energy_samples)
    row = format_row(result)
    bench.print_result(HEADER, row, result['out_dir'])
    return result, row


if __name__ == '__main__':
    main()
