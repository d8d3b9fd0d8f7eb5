"""Speed and peak memory of the unary networks on CPU (issue 5 benchmark).

``python tools/benchmarks/unary.py [--iters 3] [--warmup 1] [--threads 2]
[--size 321] [--batch-sizes 1 4] [--models vgg16_largefov r101_aspp]``

For each (model, batch size, mode) one subprocess (so that peak RSS,
``resource.getrusage(...).ru_maxrss``, is not shared between cases) builds
the model from ``configs/_base_/models`` with random weights and times
``--iters`` training iterations (forward, CE loss, backward, SGD step) or
inference passes (``encode_decode`` at input size, no grad) after
``--warmup`` untimed ones. Prints a markdown table and the command.
"""
import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import iaffinity_plugins  # noqa: F401  (before mmseg: compat + registration)
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from iaffinity_plugins.registry import MODELS

CONFIGS = Path(__file__).resolve().parents[2] / 'configs' / '_base_' / 'models'
MODEL_CONFIGS = {
    'vgg16_largefov': ('deeplab_vgg16_largefov.py',
                       'VGG16-LargeFOV + LargeFOV'),
    'r101_aspp': ('deeplabv2_r101.py', 'ResNetV1c-101 + ASPP-L'),
}
NUM_CLASSES = 21


def build_model(name: str) -> torch.nn.Module:
    """A unary net from its base config, random init, BN instead of SyncBN
    (no process group in a benchmark)."""
    init_default_scope('mmseg')
    cfg = Config.fromfile(CONFIGS / MODEL_CONFIGS[name][0])
    if cfg.model.backbone.get('norm_cfg'):
        cfg.model.backbone.norm_cfg = dict(type='BN', requires_grad=True)
    cfg.model.decode_head.num_classes = NUM_CLASSES
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def run_case(name: str, mode: str, batch: int, size: int, iters: int,
             warmup: int) -> dict:
    """Time one case in this process; returns rates and peak RSS."""
    model = build_model(name)
    inputs = torch.randn(batch, 3, size, size)
    if mode == 'train':
        model.train()
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
        samples = []
        for _ in range(batch):
            sample = SegDataSample()
            sample.gt_sem_seg = PixelData(
                data=torch.randint(0, NUM_CLASSES, (1, size, size)))
            samples.append(sample)

        def step():
            loss, _ = model.parse_losses(model.loss(inputs, samples))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    else:
        model.eval()
        metas = [dict(img_shape=(size, size))] * batch

        def step():
            with torch.no_grad():
                model.encode_decode(inputs, metas)

    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(iters):
        step()
    seconds = (time.perf_counter() - start) / iters
    return dict(model=name, mode=mode, batch=batch, seconds_per_iter=seconds,
                iters_per_s=1 / seconds, images_per_s=batch / seconds,
                # Linux reports ru_maxrss in KiB.
                peak_rss_mib=resource.getrusage(
                    resource.RUSAGE_SELF).ru_maxrss / 1024)


def markdown_table(rows: list) -> str:
    lines = ['| model | batch | train it/s | train peak RSS (MiB) | '
             'infer images/s | infer peak RSS (MiB) |',
             '| --- | --- | --- | --- | --- | --- |']
    keyed = {(r['model'], r['batch'], r['mode']): r for r in rows}
    for name, batch in sorted({(r['model'], r['batch']) for r in rows},
                              key=lambda k: (list(MODEL_CONFIGS).index(k[0]),
                                             k[1])):
        train = keyed.get((name, batch, 'train'))
        infer = keyed.get((name, batch, 'infer'))
        cells = [MODEL_CONFIGS[name][1], str(batch)]
        cells += [f"{train['iters_per_s']:.3f}", f"{train['peak_rss_mib']:.0f}"
                  ] if train else ['-', '-']
        cells += [f"{infer['images_per_s']:.2f}",
                  f"{infer['peak_rss_mib']:.0f}"] if infer else ['-', '-']
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--iters', type=int, default=3)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--size', type=int, default=321)
    parser.add_argument('--batch-sizes', type=int, nargs='+', default=[1, 4])
    parser.add_argument('--models', nargs='+', default=list(MODEL_CONFIGS),
                        choices=list(MODEL_CONFIGS))
    parser.add_argument('--modes', nargs='+', default=['train', 'infer'],
                        choices=['train', 'infer'])
    parser.add_argument('--case', help=argparse.SUPPRESS)  # child process
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.case:
        name, mode, batch = args.case.split(':')
        print(json.dumps(run_case(name, mode, int(batch), args.size,
                                  args.iters, args.warmup)))
        return
    rows = []
    for name in args.models:
        for batch in args.batch_sizes:
            for mode in args.modes:
                child = subprocess.run(
                    [sys.executable, __file__, '--case',
                     f'{name}:{mode}:{batch}', '--iters', str(args.iters),
                     '--warmup', str(args.warmup), '--threads',
                     str(args.threads), '--size', str(args.size)],
                    check=True, capture_output=True, text=True)
                rows.append(json.loads(child.stdout.strip().splitlines()[-1]))
                print(f'done {name} {mode} batch {batch}', file=sys.stderr)
    print(f'{args.size}x{args.size}, torch.set_num_threads({args.threads}), '
          f'{args.iters} timed iterations after {args.warmup} warm-up, '
          'random init, CPU\n')
    print(markdown_table(rows))
    print('\ncommand: python ' + ' '.join(sys.argv))


if __name__ == '__main__':
    main()
