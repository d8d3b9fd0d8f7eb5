"""Retrain the pairwise net of a finished EM step with a variant config.

``python tools/benchmarks/pairwise.py CONFIG WORK_DIR [--step T]
[--label-dir DIR] [--energy-samples N] [--cfg-options KEY=VALUE ...]``

e.g. ``--cfg-options train_cfg.pairwise.model.head.init_cfg.std=0.1
train_cfg.pairwise.optim_wrapper.optimizer.lr=5e-3`` (issue #22: does the
SPN move the unary output at all?).

Only step T's pairwise stage is retrained, as the EM loop trains g_T: its
config (``CONFIG`` with ``--cfg-options``), the unary net f_T that
``WORK_DIR``'s manifest records for ``step_T/unary`` filled in, the run's
superpixel cache, and by default the labels the loop trains g_T on (Y_T:
``step_T/labels``, the seeds ``step_0/seeds`` for T = 0). Everything goes to
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
import argparse
import copy
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import iaffinity_plugins  # noqa: F401  (before mmseg: compat + registration)
import torch
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope

from iaffinity_plugins.cli import load_config
from iaffinity_plugins.engine.checkpoint import load_checkpoint_strict
from iaffinity_plugins.engine.manifest import Manifest, config_hash
from iaffinity_plugins.engine.stage_runner import (FINAL_WEIGHTS,
                                                   set_transform_options,
                                                   stage_pipeline,
                                                   train_stage)
from iaffinity_plugins.evaluation.energy import propagation_energy
from iaffinity_plugins.evaluation.label_metrics import evaluate_label_dir
from iaffinity_plugins.labels.label_io import atomic_write_bytes, read_label
from iaffinity_plugins.labels.refinement import write_label_maps
from iaffinity_plugins.registry import DATASETS, MODELS

IGNORE_INDEX = 255
HEADER = ('| run | step | labels | variant | unary mIoU | refined mIoU | '
          'refined - unary | fixed (of unary wrong) | broken (of unary '
          'right) | J refined | J labels |')
SEPARATOR = '|---|---|---|---|---|---|---|---|---|---|---|'
# Shown in the variant cell without this prefix.
PAIRWISE_PREFIX = 'train_cfg.pairwise.'


def training_labels_dir(work_dir: str, step: int) -> str:
    """Y_step, what the EM loop trains g_step on (the loop's
    ``confident_labels_dir``): the seeds for step 0, the mined labels
    after."""
    return osp.join(work_dir, f'step_{step}',
                    'seeds' if step == 0 else 'labels')


def unary_weights(work_dir: str, step: int) -> str:
    """f_step's final weights, as the manifest records ``step_<step>/unary``.

    A relative path that the manifest recorded for another working
    directory is looked up in the stage's folder of ``work_dir``.
    """
    manifest = Manifest(osp.join(work_dir, 'manifest.json'), writable=False)
    stage = f'step_{step}/unary'
    record = manifest.record(stage)
    if record is None or record['state'] != 'done':
        raise RuntimeError(f'{work_dir}: stage {stage} is not done (its '
                           'manifest records '
                           f"{record and record['state']})")
    weights = record['outputs']['weights']
    if not osp.isfile(weights):
        weights = osp.join(work_dir, f'step_{step}', 'unary', FINAL_WEIGHTS)
    if not osp.isfile(weights):
        raise FileNotFoundError(f"{stage}'s weights not found: "
                                f"{record['outputs']['weights']}")
    return weights


def pairwise_stage_cfg(loop_cfg: dict, weights: str, work_dir: str) -> dict:
    """The loop's pairwise stage config: f_T's model and weights filled in,
    ``LoadSuperpixels`` reading the run's cache (as the loop's
    ``_pairwise_cfg`` and ``_set_superpixels``)."""
    if loop_cfg.get('pairwise') is None:
        raise ValueError('the config has no pairwise net (train_cfg.'
                         'pairwise=None): nothing to retrain')
    cfg = copy.deepcopy(loop_cfg['pairwise'])
    cfg['model']['unary'] = copy.deepcopy(loop_cfg['unary']['model'])
    cfg['model']['unary_checkpoint'] = weights
    superpixels = {'method': 'felzenszwalb',
                   **loop_cfg.get('superpixels', {})}
    set_transform_options(stage_pipeline(cfg), 'LoadSuperpixels',
                          cache_dir=osp.join(work_dir, 'superpixels'),
                          **superpixels)
    return cfg


def variant_name(cfg_options: Optional[dict]) -> str:
    """The ``--cfg-options`` as ``key=value``, ``default`` without any."""
    if not cfg_options:
        return 'default'
    return ' '.join(f'{key.removeprefix(PAIRWISE_PREFIX)}={value}'
                    for key, value in cfg_options.items())


def fix_break_counts(unary_dir: str, refined_dir: str,
                     dataset) -> Dict[str, int]:
    """Pixels the refinement fixes / breaks, against the ground truth.

    Returns:
        dict: ``unary_wrong`` (labelled ground-truth pixels where the unary
        map differs), ``fixed`` (of those, right after refinement),
        ``unary_right`` and ``broken`` (of those, wrong after refinement).
        Images without ground truth are skipped.
    """
    counts = dict(unary_wrong=0, fixed=0, unary_right=0, broken=0)
    for index in range(len(dataset)):
        info = dataset.get_data_info(index)
        if info.get('gt_seg_map_path') is None:
            continue
        gt = read_label(info['gt_seg_map_path'])
        unary = read_label(osp.join(unary_dir, f"{info['img_id']}.png"))
        refined = read_label(osp.join(refined_dir, f"{info['img_id']}.png"))
        known = gt != IGNORE_INDEX
        wrong = known & (unary != gt)
        right = known & (unary == gt)
        counts['unary_wrong'] += int(wrong.sum())
        counts['fixed'] += int((wrong & (refined == gt)).sum())
        counts['unary_right'] += int(right.sum())
        counts['broken'] += int((right & (refined != gt)).sum())
    return counts


@torch.no_grad()
def mean_energy(refiner, dataset, label_dir: str,
                samples: int) -> Optional[float]:
    """Mean J = <a, a - G a> of ``label_dir`` over the first ``samples``
    images by id (the EM loop's Table-7 sample); None for none."""
    num_classes = len(dataset.metainfo['classes'])
    order = sorted(range(len(dataset)),
                   key=lambda i: dataset.get_data_info(i)['img_id'])
    energies = []
    for index in order[:samples]:
        item = dataset.prepare_data(index)
        batch = refiner.data_preprocessor(
            dict(inputs=[item['inputs']],
                 data_samples=[item['data_samples']]), False)
        labels = torch.from_numpy(read_label(osp.join(
            label_dir, f"{dataset.get_data_info(index)['img_id']}.png")))
        energies.append(propagation_energy(
            refiner, batch['inputs'], labels[None].long(), num_classes))
    return float(torch.cat(energies).mean()) if energies else None


def _percent(part: int, total: int) -> str:
    share = 100 * part / total if total else float('nan')
    return f'{part:,} of {total:,} ({share:.1f} %)'


def _energy(value: Optional[float]) -> str:
    return '-' if value is None else f'{value:.4f}'


def format_row(result: dict) -> str:
    """One markdown row of :data:`HEADER`."""
    counts = result['pixels']
    return (f"| {result['run']} | {result['step']} | {result['labels']} | "
            f"{result['variant']} | {result['unary_miou']:.2f} | "
            f"{result['refined_miou']:.2f} | "
            f"{result['refined_miou'] - result['unary_miou']:+.2f} | "
            f"{_percent(counts['fixed'], counts['unary_wrong'])} | "
            f"{_percent(counts['broken'], counts['unary_right'])} | "
            f"{_energy(result['energy_refined'])} | "
            f"{_energy(result['energy_labels'])} |")


def build_dataset(cfg: Config):
    """The run's training images with the loop's (inference) pipeline."""
    return DATASETS.build(copy.deepcopy(cfg.train_dataloader.dataset))


def load_refiner(model_cfg: dict, weights: str) -> torch.nn.Module:
    """The trained pairwise net (holding f_T), on the GPU when there is
    one."""
    model = MODELS.build(copy.deepcopy(model_cfg))
    load_checkpoint_strict(model, weights)
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    return model.to(device).eval()


def run(config: str, work_dir: str, step: int = 1,
        label_dir: Optional[str] = None,
        cfg_options: Optional[dict] = None,
        energy_samples: Optional[int] = None) -> dict:
    """Retrain step ``step``'s pairwise net and measure it (module
    docstring); returns the result (also in ``result.json``)."""
    init_default_scope('mmseg')
    cfg = load_config(config, cfg_options, work_dir, 'none')
    weights = unary_weights(work_dir, step)
    labels = label_dir or training_labels_dir(work_dir, step)
    if not osp.isdir(labels):
        raise FileNotFoundError(f'label folder not found: {labels}')
    stage_cfg = pairwise_stage_cfg(cfg.train_cfg.to_dict(), weights,
                                   work_dir)
    out_dir = osp.join(work_dir, 'benchmarks', f'pairwise_step{step}_'
                       f'{config_hash(stage_cfg, osp.abspath(labels))}')
    weights = osp.join(out_dir, 'pairwise', FINAL_WEIGHTS)
    if not osp.isfile(weights):  # present: trained to the end before
        weights = train_stage(stage_cfg, cfg, osp.join(out_dir, 'pairwise'),
                              f'benchmark/step_{step}/pairwise', labels)
    dataset = build_dataset(cfg)
    refiner = load_refiner(stage_cfg['model'], weights)
    out_dirs = dict(unary=osp.join(out_dir, 'unary_labels'),
                    refined=osp.join(out_dir, 'refined'))
    # The refiner computes f_T's probabilities itself: one forward gives
    # both maps.
    write_label_maps(refiner.unary, refiner, dataset, out_dirs)
    if energy_samples is None:
        energy_samples = cfg.train_cfg.get('energy_samples', 100)
    result = dict(
        run=work_dir, step=step, labels=osp.relpath(labels, work_dir),
        variant=variant_name(cfg_options), out_dir=out_dir,
        unary_miou=evaluate_label_dir(out_dirs['unary'], dataset)['miou'],
        refined_miou=evaluate_label_dir(out_dirs['refined'],
                                        dataset)['miou'],
        pixels=fix_break_counts(out_dirs['unary'], out_dirs['refined'],
                                dataset),
        energy_refined=mean_energy(refiner, dataset, out_dirs['refined'],
                                   energy_samples),
        energy_labels=mean_energy(refiner, dataset, labels, energy_samples))
    row = format_row(result)
    atomic_write_bytes(osp.join(out_dir, 'result.json'),
                       json.dumps(dict(result, row=row), indent=2).encode())
    atomic_write_bytes(osp.join(out_dir, 'row.md'),
                       '\n'.join((HEADER, SEPARATOR, row, '')).encode())
    return result


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='the EM config of the run')
    parser.add_argument('work_dir', help='the finished run')
    parser.add_argument('--step', type=int, default=1,
                        help='EM step T whose pairwise net is retrained')
    parser.add_argument('--label-dir', help='labels to train on (default: '
                        'Y_T, what the loop trains g_T on)')
    parser.add_argument('--energy-samples', type=int, help='images of the '
                        "energy J (default: the config's energy_samples; 0: "
                        'no J)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='the variant: overrides of CONFIG, key=value')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> Tuple[dict, str]:
    args = parse_args(argv)
    if args.step < 0:
        raise ValueError(f'--step must be >= 0, got {args.step}')
    os.environ.setdefault('LOCAL_RANK', '0')
    result = run(args.config, args.work_dir, args.step, args.label_dir,
                 args.cfg_options, args.energy_samples)
    row = format_row(result)
    print('\n'.join((HEADER, SEPARATOR, row)))
    print(f"\n{result['out_dir']}")
    return result, row


if __name__ == '__main__':
    main()
