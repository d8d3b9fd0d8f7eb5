"""One stage of a finished EM run retrained with a variant config.

What the benchmark tools that retrain a stage share
(``tools/benchmarks/pairwise.py``: g_T, ``tools/benchmarks/unary_step.py``:
f_T): the stage outputs the run's manifest records, a fresh output folder
``<work_dir>/benchmarks/<name>_<hash>`` per variant (the hash of its stage
config and training labels, so a rerun resumes there), the pixels a
variant's label map fixes and breaks against a reference map of the run,
and the result written as ``result.json`` and a markdown row ``row.md``.
Label maps are (H, W) ``uint8`` with 255 = unknown.
"""
import argparse
import copy
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope

from ..cli import load_config
from ..evaluation.label_metrics import to_json_safe
from ..labels.label_io import IGNORE_INDEX, atomic_write_bytes, read_label
from ..registry import DATASETS
from .manifest import Manifest, config_hash, relative_paths
from .stage_configs import pairwise_stage_cfg
from .stage_runner import FINAL_WEIGHTS, train_stage


def stage_outputs(work_dir: str, stage: str) -> dict:
    """The outputs ``work_dir``'s manifest records for a done ``stage``.

    Raises:
        RuntimeError: naming the stage when it is not done.
    """
    manifest = Manifest(osp.join(work_dir, 'manifest.json'), writable=False)
    record = manifest.record(stage)
    if record is None or record['state'] != 'done':
        raise RuntimeError(f'{work_dir}: stage {stage} is not done (its '
                           'manifest records '
                           f"{record and record['state']})")
    return record['outputs']


def stage_weights(work_dir: str, stage: str) -> str:
    """A done stage's final weights, as ``work_dir``'s manifest records them
    (e.g. ``'step_1/unary'``).

    A relative path that the manifest recorded for another working
    directory is looked up in the stage's folder of ``work_dir``.

    Raises:
        FileNotFoundError: naming the stage.
    """
    recorded = stage_outputs(work_dir, stage)['weights']
    weights = recorded
    if not osp.isfile(weights):
        weights = osp.join(work_dir, stage, FINAL_WEIGHTS)
    if not osp.isfile(weights):
        raise FileNotFoundError(f"{stage}'s weights not found: {recorded}")
    return weights


def run_pairwise_stage_cfg(cfg: Config, work_dir: str, step: int) -> dict:
    """The run's pairwise stage config (``train_cfg.pairwise``) around step
    ``step``'s unary net f_T, with f_T's weights as the manifest records
    them.

    Raises:
        ValueError: the config has no pairwise net.
    """
    loop_cfg = cfg.train_cfg.to_dict()
    if loop_cfg.get('pairwise') is None:
        raise ValueError('the config has no pairwise net '
                         '(train_cfg.pairwise=None)')
    return pairwise_stage_cfg(loop_cfg['pairwise'],
                              loop_cfg['unary']['model'],
                              stage_weights(work_dir, f'step_{step}/unary'),
                              work_dir, loop_cfg.get('superpixels'))


def unary_training_labels(work_dir: str, step: int,
                          unary_labels: str = 'refined') -> str:
    """What the EM loop trains f_step on (the loop's ``unary_targets_dir``):
    the seeds for step 0, after it the previous step's refined labels
    (``unary_labels='refined'``) or mined ones (``'mined'``)."""
    if step == 0:
        return osp.join(work_dir, 'step_0', 'seeds')
    name = 'refined' if unary_labels == 'refined' else 'labels'
    return osp.join(work_dir, f'step_{step - 1}', name)


def pairwise_training_labels(work_dir: str, step: int) -> str:
    """Y_step, what the EM loop trains g_step on (the loop's
    ``confident_labels_dir``): the labels mined from f_step's output."""
    return osp.join(work_dir, f'step_{step}', 'labels')


def check_label_dir(label_dir: str) -> str:
    """``label_dir`` when it is a folder.

    Raises:
        FileNotFoundError: naming the folder.
    """
    if not osp.isdir(label_dir):
        raise FileNotFoundError(f'label folder not found: {label_dir}')
    return label_dir


def load_run_config(config: str, cfg_options: Optional[dict],
                    work_dir: str) -> Config:
    """The run's config with the variant's ``--cfg-options`` applied (as
    ``tools/train.py`` reads it), mmseg's registry scope set."""
    init_default_scope('mmseg')
    return load_config(config, cfg_options, work_dir, 'none')


def benchmark_dir(work_dir: str, name: str, stage_cfg: dict,
                  label_dir: str) -> str:
    """``<work_dir>/benchmarks/<name>_<hash>``: one folder per variant
    (stage config and training labels). Paths inside the work dir are
    hashed from its :data:`~.manifest.WORK_DIR_TOKEN`, so a moved work dir
    finds its variants again."""
    variant = [stage_cfg, osp.abspath(label_dir)]
    # The stage config may name paths from a relative work dir as given.
    for root in {osp.abspath(work_dir), osp.normpath(work_dir)}:
        variant = relative_paths(variant, root)
    return osp.join(work_dir, 'benchmarks', f'{name}_{config_hash(variant)}')


def train_variant(stage_cfg: dict, runtime_cfg: Config, out_dir: str,
                  stage: str, step: int, label_dir: str,
                  init_weights: Optional[str] = None) -> str:
    """The variant's final weights: trained as the loop trains the stage
    (:func:`~.stage_runner.train_stage`, from ``init_weights`` when given)
    into ``out_dir/<stage>``, resumed there, or found there when trained to
    the end before."""
    weights = osp.join(out_dir, stage, FINAL_WEIGHTS)
    if osp.isfile(weights):
        return weights
    return train_stage(stage_cfg, runtime_cfg, osp.join(out_dir, stage),
                       f'benchmark/step_{step}/{stage}', label_dir,
                       init_weights=init_weights)


def build_dataset(cfg: Config):
    """The run's training images with the loop's (inference) pipeline."""
    return DATASETS.build(copy.deepcopy(cfg.train_dataloader.dataset))


def default_device() -> str:
    """The GPU when there is one."""
    return 'cuda' if torch.cuda.is_available() else 'cpu'


def variant_name(cfg_options: Optional[dict], prefix: str = '') -> str:
    """The ``--cfg-options`` as ``key=value`` (keys without ``prefix``),
    ``default`` without any."""
    if not cfg_options:
        return 'default'
    return ' '.join(f'{key.removeprefix(prefix)}={value}'
                    for key, value in cfg_options.items())


def fix_break_counts(unary_dir: str, variant_dir: str,
                     dataset) -> Dict[str, int]:
    """Pixels a variant's label maps fix / break, against the ground truth.

    Args:
        unary_dir (str): The reference maps, a unary net's output.
        variant_dir (str): The maps compared with them (refined, or another
            unary net's).
        dataset (BaseSegDataset): Image ids and ground-truth masks.

    Returns:
        dict: ``unary_wrong`` (labelled ground-truth pixels where the
        reference differs), ``fixed`` (of those, right in the variant),
        ``unary_right`` and ``broken`` (of those, wrong in the variant).
        Images without ground truth are skipped.
    """
    counts = dict(unary_wrong=0, fixed=0, unary_right=0, broken=0)
    for index in range(len(dataset)):
        info = dataset.get_data_info(index)
        if info.get('gt_seg_map_path') is None:
            continue
        gt = read_label(info['gt_seg_map_path'])
        unary = read_label(osp.join(unary_dir, f"{info['img_id']}.png"))
        variant = read_label(osp.join(variant_dir, f"{info['img_id']}.png"))
        known = gt != IGNORE_INDEX
        wrong = known & (unary != gt)
        right = known & (unary == gt)
        counts['unary_wrong'] += int(wrong.sum())
        counts['fixed'] += int((wrong & (variant == gt)).sum())
        counts['unary_right'] += int(right.sum())
        counts['broken'] += int((right & (variant != gt)).sum())
    return counts


# ------------------------------------------------------------ the result row
def markdown_row(*cells: object) -> str:
    """``| cell | cell | ... |``."""
    return '| ' + ' | '.join(str(cell) for cell in cells) + ' |'


def variant_cells(result: dict) -> List[str]:
    """The cells naming the variant: ``run``, ``step``, ``labels``,
    ``variant``."""
    return [result[key] for key in ('run', 'step', 'labels', 'variant')]


def percent_cell(part: int, total: int) -> str:
    """``part of total (share %)``."""
    share = 100 * part / total if total else float('nan')
    return f'{part:,} of {total:,} ({share:.1f} %)'


def fix_break_cells(counts: Dict[str, int]) -> List[str]:
    """The cells of :func:`fix_break_counts`: fixed of the reference's
    wrong pixels, broken of its right ones."""
    return [percent_cell(counts['fixed'], counts['unary_wrong']),
            percent_cell(counts['broken'], counts['unary_right'])]


def table(header: str, row: str) -> str:
    """A markdown table of one row under ``header``."""
    separator = '|' + '---|' * (header.count('|') - 1)
    return '\n'.join((header, separator, row))


def write_result(out_dir: str, result: dict, header: str, row: str) -> None:
    """``result.json`` (the result with its row; NaN as null) and
    ``row.md`` (the row under its header) in ``out_dir``."""
    atomic_write_bytes(
        osp.join(out_dir, 'result.json'),
        json.dumps(to_json_safe(dict(result, row=row)), indent=2).encode())
    atomic_write_bytes(osp.join(out_dir, 'row.md'),
                       (table(header, row) + '\n').encode())


def print_result(header: str, row: str, out_dir: str) -> None:
    """The row under its header, then the output folder."""
    print(table(header, row))
    print(f'\n{out_dir}')


# ---------------------------------------------------------- command line
def run_parser(description: str, step_help: str,
               default_step: int) -> argparse.ArgumentParser:
    """The arguments that name a finished run's step: ``config``,
    ``work_dir`` and ``--step`` (help ``step_help``)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('config', help='the EM config of the run')
    parser.add_argument('work_dir', help='the finished run')
    parser.add_argument('--step', type=int, default=default_step,
                        help=step_help)
    return parser


def benchmark_parser(description: str,
                     network: str) -> argparse.ArgumentParser:
    """The arguments every stage benchmark takes: the run (``config``,
    ``work_dir``), ``--step``, ``--label-dir``, ``--cfg-options``.

    Args:
        network (str): The retrained net, e.g. ``'unary net f_T'``, for the
            help.
    """
    parser = run_parser(description,
                        f'EM step T whose {network} is retrained', 1)
    parser.add_argument('--label-dir', help='labels to train on (default: '
                        f'what the loop trains the {network} on)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='the variant: overrides of CONFIG, key=value')
    return parser


def parse_benchmark_args(parser: argparse.ArgumentParser,
                         argv: Optional[Sequence[str]]) -> argparse.Namespace:
    """Parse ``argv``, check ``--step`` and set the single process's
    ``LOCAL_RANK`` (the stage runner reads it).

    Raises:
        ValueError: ``--step`` below 0.
    """
    args = parser.parse_args(argv)
    if args.step < 0:
        raise ValueError(f'--step must be >= 0, got {args.step}')
    os.environ.setdefault('LOCAL_RANK', '0')
    return args
