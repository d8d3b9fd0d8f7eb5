"""Label-writing stages of the synthetic demo on 1 vs N processes (CPU).

``python tools/benchmarks/distributed_inference.py [--nprocs 1 2]
[--images 200] [--threads 2] [--work-dir DIR] [--quick]``

The networks of ``configs/iaffinity/synthetic_demo.py`` (CAM classifier,
unary net, pairwise net, region classifier) are built with random weights
(a stage's cost does not depend on them) and saved; the demo's synthetic set
is generated with ``--images`` training images. Then, for each process count
N, one torchrun job (``--launcher pytorch``, gloo) runs the three stages the
EM loop shards across ranks (``labels/label_writer.py``), each into fresh
folders:

- seeds: multi-scale/flip CAMs -> seed labels (``labels/seeds.py``);
- refine: unary + pairwise net -> unary and refined labels
  (``labels/refinement.py``);
- mine: superpixels (not cached beforehand) + 80 % rule + region classifier
  on the refined labels (``labels/mining.py``).

Each stage is timed on rank 0 between two barriers, so the slowest rank
counts; first-call costs (e.g. oneDNN kernel set-up) are included, as in a
real run, while process start-up, data set and model building are only in
the job's total. The ``--threads`` CPU threads are split evenly over the N
processes. Prints the command and a markdown table. ``--quick`` (6 images
of 48-64 px) only checks that everything runs. Measure on otherwise idle
cores: with other jobs on them, a process with 2 OpenMP threads was up to
20x slower than with 1 (``--quick`` on the 2-core machine).
"""
import argparse
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional, Tuple

import iaffinity_plugins  # noqa: F401  (before mmseg: compat + registration)
import torch
from mmengine.config import Config
from mmengine.dist import barrier, is_main_process
from mmengine.registry import init_default_scope

from iaffinity_plugins.cli import (init_launcher, load_config,
                                   summed_over_ranks)
from iaffinity_plugins.engine.checkpoint import load_checkpoint_strict
from iaffinity_plugins.engine.stage_configs import run_superpixel_cache
from iaffinity_plugins.labels.mining import mine_labels
from iaffinity_plugins.labels.refinement import write_label_maps
from iaffinity_plugins.labels.seeds import write_seeds
from iaffinity_plugins.registry import DATASETS, MODELS

DEMO = osp.join(osp.dirname(osp.abspath(__file__)), '..', '..', 'configs',
                'iaffinity', 'synthetic_demo.py')
NETWORKS = ('cam', 'unary', 'pairwise', 'confidence')
STAGES = ('seeds', 'refine', 'mine')
QUICK_DATA = dict(num_train=6, min_size=48, max_size=64)
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def prepare(work_dir: str, data: dict) -> str:
    """Generate the data, save random-init weights; the worker config.

    Args:
        work_dir (str): Gets ``data/``, ``<network>.pth`` and the config.
        data (dict): ``generator_cfg`` overrides (e.g. ``num_train``).

    Returns:
        str: Path of the demo config pointed at that data, with every
        ``num_classes`` filled in and ``weights`` naming the checkpoints.
    """
    init_default_scope('mmseg')
    options = {f'{loader}.dataset.generator_cfg.{key}': value
               for loader in LOADERS for key, value in data.items()}
    # load_config builds the training set (to fill num_classes): the images
    # are generated there.
    cfg = load_config(DEMO, dict(options, data_root=osp.join(work_dir,
                                                             'data')),
                      work_dir, 'none')
    stages = cfg.train_cfg
    weights = {name: osp.join(work_dir, f'{name}.pth') for name in NETWORKS}
    # The pairwise net holds the unary net, as the EM loop fills it in.
    stages.pairwise.model.update(unary=stages.unary.model,
                                 unary_checkpoint=weights['unary'])
    for name in NETWORKS:
        model = MODELS.build(stages[name].model)
        torch.save(dict(state_dict=model.state_dict()), weights[name])
    cfg.weights = weights
    path = osp.join(work_dir, 'distributed_inference.py')
    cfg.dump(path)
    return path


def load_network(cfg: Config, name: str) -> torch.nn.Module:
    """One of :data:`NETWORKS`, with its saved weights, in eval mode."""
    model = MODELS.build(cfg.train_cfg[name].model)
    load_checkpoint_strict(model, cfg.weights[name])
    return model.eval()


def timed(function: Callable[[], int]) -> Tuple[float, int]:
    """``(seconds, result)`` of ``function()`` between two barriers."""
    barrier()
    start = time.perf_counter()
    result = function()
    barrier()
    return time.perf_counter() - start, result


def worker(config: str, out_dir: str, threads: int) -> None:
    """One rank of a torchrun job: time the stages, rank 0 writes
    ``out_dir/timings.json`` (seconds and images written per stage)."""
    torch.set_num_threads(threads)
    init_default_scope('mmseg')
    cfg = load_config(config, None, None, 'pytorch')
    init_launcher(cfg)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    stages = cfg.train_cfg
    cam, unary, refiner, classifier = (load_network(cfg, name)
                                       for name in NETWORKS)
    seeds = dict(stages.seeds)
    cam_options = {key: seeds.pop(key) for key in ('scales', 'flip')
                   if key in seeds}
    # mine_labels' own options (keep_objects needs a previous step's
    # folder, which this one-step benchmark has not).
    mining = {key: stages.mining[key] for key in ('mode', 'ratio',
                                                   'threshold')
              if key in stages.mining}
    folder = {name: osp.join(out_dir, name) for name in (
        'seeds', 'refined', 'unary_labels', 'mined')}
    work = dict(
        seeds=lambda: write_seeds(cam, dataset, folder['seeds'], seeds,
                                  progress=False, **cam_options)['written'],
        refine=lambda: write_label_maps(
            unary, refiner, dataset, dict(unary=folder['unary_labels'],
                                          refined=folder['refined']),
            progress=False,
            short_edge=stages.get('infer_short_edge'))['images'],
        mine=lambda: mine_labels(
            classifier, dataset, folder['refined'], folder['mined'],
            run_superpixel_cache(out_dir, stages.get('superpixels')),
            progress=False, short_edge=stages.get('infer_short_edge'),
            **mining)['images'])
    timings = {}
    for stage in STAGES:
        seconds, written = timed(work[stage])
        timings[stage] = dict(
            seconds=seconds,
            images=summed_over_ranks(dict(images=written))['images'])
    if is_main_process():
        with open(osp.join(out_dir, 'timings.json'), 'w') as file:
            json.dump(timings, file)


def run_job(config: str, nproc: int, threads: int, out_dir: str) -> dict:
    """One torchrun job of ``nproc`` processes into a fresh ``out_dir``;
    its timings and total."""
    shutil.rmtree(out_dir, ignore_errors=True)
    per_process = max(1, threads // nproc)
    start = time.perf_counter()
    job = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--standalone',
         f'--nproc_per_node={nproc}', osp.abspath(__file__), '--worker',
         config, '--out', out_dir, '--threads', str(per_process)],
        env=dict(os.environ, OMP_NUM_THREADS=str(per_process)),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    total = time.perf_counter() - start
    if job.returncode != 0:
        raise RuntimeError(f'the {nproc}-process job failed:\n'
                           f'{job.stdout[-3000:]}')
    with open(osp.join(out_dir, 'timings.json')) as file:
        return dict(stages=json.load(file), total=total,
                    threads=per_process)


def markdown_table(results: Dict[int, dict], images: int) -> str:
    """Stage rows, one seconds column per process count, speed-ups vs the
    first count."""
    counts = list(results)
    base = counts[0]
    header = ['stage', 'images'] + [
        f'{n} x {results[n]["threads"]} thread(s) (s)' for n in counts] + [
        f'speed-up {n} vs {base}' for n in counts[1:]]
    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + ' --- |' * len(header)]
    rows = [(stage, [results[n]['stages'][stage]['seconds'] for n in counts])
            for stage in STAGES]
    rows.append(('job total (start-up included)',
                 [results[n]['total'] for n in counts]))
    for name, seconds in rows:
        cells = [name, str(images)] + [f'{s:.2f}' for s in seconds] + [
            f'{seconds[0] / s:.2f}x' for s in seconds[1:]]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def check_every_image_written(results: Dict[int, dict], images: int) -> None:
    """Each stage wrote every image exactly once, whatever the count."""
    for nproc, result in results.items():
        for stage, timing in result['stages'].items():
            if timing['images'] != images:
                raise RuntimeError(
                    f'{stage} on {nproc} processes wrote {timing["images"]} '
                    f'labels for {images} images')


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--nprocs', type=int, nargs='+', default=[1, 2])
    parser.add_argument('--images', type=int, default=200,
                        help='training images of the synthetic set')
    parser.add_argument('--threads', type=int, default=os.cpu_count(),
                        help='CPU threads in all, split over the processes')
    parser.add_argument('--work-dir', help='keep data, weights and labels '
                        'here (default: a temporary folder)')
    parser.add_argument('--quick', action='store_true',
                        help=f'{QUICK_DATA}: check that it runs')
    parser.add_argument('--worker', metavar='CONFIG',
                        help=argparse.SUPPRESS)  # a torchrun rank
    parser.add_argument('--out', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.out, args.threads)
        return
    data = QUICK_DATA if args.quick else dict(num_train=args.images)
    with tempfile.TemporaryDirectory() as temp:
        work_dir = args.work_dir or temp
        config = prepare(work_dir, data)
        results = {
            nproc: run_job(config, nproc, args.threads,
                           osp.join(work_dir, f'nproc_{nproc}'))
            for nproc in args.nprocs}
    check_every_image_written(results, data['num_train'])
    print('\nCommand: python tools/benchmarks/distributed_inference.py '
          + ' '.join(sys.argv[1:] if argv is None else argv)
          + f'\n({os.cpu_count()} CPU cores, torch {torch.__version__}, '
          'gloo, random-init demo networks)\n')
    print(markdown_table(results, data['num_train']))


if __name__ == '__main__':
    main()
