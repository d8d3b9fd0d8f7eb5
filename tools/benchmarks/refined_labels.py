"""Write a finished EM step's refined labels another way.

Run from the repository root on a finished run (CONFIG: the config it was
trained with, WORK_DIR: its work dir)::

    python tools/benchmarks/refined_labels.py CONFIG WORK_DIR [--step T]
        [--min-confidence C] [--[no-]superpixel-pooling]

The E-step of step T as the loop ran it (f_T and g_T as ``WORK_DIR``'s
manifest records them, alpha_T^p = G_T alpha_T^u, lost tags given their
seed pixels when the config has ``keep_tags``), except that
``--min-confidence C`` leaves a refined pixel whose class has a probability
below C (over background and the image's tags) unknown (255), as the seeds
leave the uncertain band around objects unknown (the loop's
``train_cfg.refined_min_confidence``, the default when the run sets it), and
``--superpixel-pooling`` averages the refined probabilities inside each of
the run's superpixels before the argmax (the loop's
``train_cfg.superpixel_pooling``, which is the default;
``--no-superpixel-pooling`` leaves it out). The labels go to
``WORK_DIR/benchmarks/refined_step<T>[_conf<C>][_pooled]/``; the next unary
net trains
on them with ``tools/benchmarks/unary_step.py CONFIG WORK_DIR --step T+1
--label-dir DIR`` (issue #20: does f_{T+1} keep the objects that
alpha_T^p gives it?).

Prints a markdown table row: the folder's mIoU (unknown pixels count as
errors), precision (mIoU of the labelled pixels), labelled share and where
its errors are (percent of the ground-truth background: labelled
foreground or unknown; of the foreground: labelled background, another
class or unknown).
"""
import argparse
import os.path as osp
from typing import List, Optional, Tuple

import iaffinity_plugins  # noqa: F401  (before mmseg: compat + registration)
from iaffinity_plugins.engine import stage_benchmark as bench
from iaffinity_plugins.engine.checkpoint import load_model
from iaffinity_plugins.engine.em_loop import seeds_dir
from iaffinity_plugins.engine.stage_configs import run_superpixel_cache
from iaffinity_plugins.evaluation.label_metrics import evaluate_label_dir
from iaffinity_plugins.labels.refinement import write_label_maps

HEADER = ('| run | step | min confidence | pooled | mIoU | precision | '
          'labelled | bg as fg | bg unknown | fg as bg | fg wrong class | '
          'fg unknown |')
# The error breakdown columns (``label_metrics.error_breakdown``).
ERROR_COLUMNS = ('bg_as_fg', 'bg_unknown', 'fg_as_bg', 'fg_wrong_class',
                 'fg_unknown')


def format_row(result: dict) -> str:
    """One markdown row of :data:`HEADER`."""
    return bench.markdown_row(
        result['run'], result['step'], result['min_confidence'] or '-',
        'yes' if result['superpixel_pooling'] else 'no',
        f"{result['miou']:.2f}", f"{result['precision']:.2f}",
        f"{result['labelled']:.1f} %",
        *(f"{result['errors'][name]:.2f}" for name in ERROR_COLUMNS))


def run(config: str, work_dir: str, step: int,
        min_confidence: Optional[float] = None,
        superpixel_pooling: Optional[bool] = None) -> dict:
    """Write and measure step ``step``'s refined labels, banded and/or
    pooled (module docstring; ``min_confidence``, ``superpixel_pooling``
    None: as the run's config); returns the result (also in
    ``result.json``)."""
    if min_confidence is not None and not 0 < min_confidence <= 1:
        raise ValueError(
            f'--min-confidence must be in (0, 1], got {min_confidence}')
    cfg = bench.load_run_config(config, None, work_dir)
    if min_confidence is None:
        min_confidence = cfg.train_cfg.get('refined_min_confidence')
    if superpixel_pooling is None:
        superpixel_pooling = cfg.train_cfg.get('superpixel_pooling', False)
    model_cfg = bench.run_pairwise_stage_cfg(cfg, work_dir, step)['model']
    weights = bench.stage_weights(work_dir, f'step_{step}/pairwise')
    refiner = load_model(model_cfg, weights, bench.default_device())
    out_dir = osp.join(work_dir, 'benchmarks', f'refined_step{step}' + (
        '' if min_confidence is None else f'_conf{min_confidence:g}') + (
        '_pooled' if superpixel_pooling else ''))
    labels = osp.join(out_dir, 'refined')
    dataset = bench.build_dataset(cfg)
    # The loop's E-step: with keep_tags, lost tags take their seed pixels.
    keep_tags_from = seeds_dir(work_dir) if cfg.train_cfg.get(
        'keep_tags', False) else None
    write_label_maps(refiner.unary, refiner, dataset, dict(refined=labels),
                     min_confidence=min_confidence,
                     keep_tags_from=keep_tags_from,
                     short_edge=cfg.train_cfg.get('infer_short_edge'),
                     superpixel_cache=run_superpixel_cache(
                         work_dir, cfg.train_cfg.get('superpixels'))
                     if superpixel_pooling else None)
    quality = evaluate_label_dir(labels, dataset)
    result = dict(run=work_dir, step=step, min_confidence=min_confidence,
                  superpixel_pooling=superpixel_pooling,
                  out_dir=out_dir, label_dir=labels, miou=quality['miou'],
                  precision=quality['precision'],
                  labelled=quality['labelled_fraction'],
                  errors=quality['errors'])
    bench.write_result(out_dir, result, HEADER, format_row(result))
    return result


def main(argv: Optional[List[str]] = None) -> Tuple[dict, str]:
    parser = bench.run_parser(
        __doc__.splitlines()[0],
        'EM step T whose refined labels are written', 0)
    parser.add_argument('--min-confidence', type=float,
                        help='refined pixels below this class probability '
                        "are unknown (default: the run's "
                        'train_cfg.refined_min_confidence)')
    parser.add_argument('--superpixel-pooling',
                        action=argparse.BooleanOptionalAction,
                        help='average the refined probabilities inside '
                        'each superpixel before the argmax (default: as '
                        "the run's train_cfg.superpixel_pooling)")
    args = bench.parse_benchmark_args(parser, argv)
    result = run(args.config, args.work_dir, args.step, args.min_confidence,
                 args.superpixel_pooling)
    row = format_row(result)
    bench.print_result(HEADER, row, result['out_dir'])
    print(f"labels: {result['label_dir']}")
    return result, row


if __name__ == '__main__':
    main()
