"""Benchmark the SPN scan op against a naive loop and a plain-autograd scan.

Each case (implementation, size, batch) runs in a fresh subprocess with
``torch.set_num_threads(threads)``: time = median wall clock of ``--repeat``
runs after one warm-up; peak memory = growth of the process's peak resident
set (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) over the whole
forward+backward runs, measured from after the inputs were created, so it is
the op's own working memory. The yardstick is one forward+backward of the
unary DeepLab VGG16-LargeFOV (configs/_base_/models/deeplab_vgg16_largefov.py,
or the same net from torchvision layers where mmseg is not installed) at the
same image size.

    python tools/benchmarks/spn_op.py            # full table
    python tools/benchmarks/spn_op.py --quick    # small sizes, one repeat
"""
import argparse
import importlib.util
import json
import os.path as osp
import resource
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict, List, Tuple

import torch
import torch.nn as nn

CHANNELS = 32
IMPLS = ('naive', 'autograd', 'custom', 'custom 4-dir G=1',
         'custom 4-dir G=32', 'VGG16-LargeFOV')
NAIVE_MAX_SIZE = 81  # the per-pixel Python loop is minutes beyond this


def naive_scan(x, g1, g2, g3):
    """Per-pixel loop (vectorised over N and C only), autograd through it."""
    n, c, height, width = x.shape
    columns = []
    for j in range(width):
        column = []
        for i in range(height):
            value = (1 - g1[:, :, i, j] - g2[:, :, i, j] -
                     g3[:, :, i, j]) * x[:, :, i, j]
            if j > 0:
                prev = columns[j - 1]
                value = value + g2[:, :, i, j] * prev[i]
                if i > 0:
                    value = value + g1[:, :, i, j] * prev[i - 1]
                if i + 1 < height:
                    value = value + g3[:, :, i, j] * prev[i + 1]
            column.append(value)
        columns.append(column)
    return torch.stack([torch.stack(col, -1) for col in columns], -1)


def autograd_scan(x, g1, g2, g3):
    """Vectorised over (N, C, H), loop over W on slices, plain autograd."""
    pad = x.new_zeros(x.shape[0], x.shape[1], 1)
    prev = torch.zeros_like(x[..., 0])
    columns = []
    for j in range(x.shape[-1]):
        above = torch.cat([pad, prev[..., :-1]], -1)  # h[i - 1, j - 1]
        below = torch.cat([prev[..., 1:], pad], -1)  # h[i + 1, j - 1]
        a, b, c = g1[..., j], g2[..., j], g3[..., j]
        prev = ((1 - a - b - c) * x[..., j] + a * above + b * prev +
                c * below)
        columns.append(prev)
    return torch.stack(columns, -1)


def _torchvision_largefov() -> torch.nn.Module:
    """DeepLab VGG16-LargeFOV from torchvision's vgg16 layers (used where
    mmseg is not installed): 3x3 pools, pool4/pool5 stride 1, conv5
    dilation 2, fc6 3x3 dilation 12 (1024), fc7 1x1 (1024), fc8 1x1 (21)."""
    from torchvision.models import vgg16
    layers = list(vgg16().features)
    pools = [i for i, m in enumerate(layers) if isinstance(m, nn.MaxPool2d)]
    for n, i in enumerate(pools):
        layers[i] = nn.MaxPool2d(3, stride=2 if n < 3 else 1, padding=1,
                                 ceil_mode=True)
    for conv in layers[pools[3] + 1:pools[4]]:
        if isinstance(conv, nn.Conv2d):
            conv.dilation, conv.padding = (2, 2), (2, 2)
    head = [nn.Conv2d(512, 1024, 3, padding=12, dilation=12), nn.ReLU(True),
            nn.Dropout2d(0.5), nn.Conv2d(1024, 1024, 1), nn.ReLU(True),
            nn.Dropout2d(0.5), nn.Conv2d(1024, 21, 1)]
    return nn.Sequential(*layers, *head)


def _unary_model() -> Tuple[torch.nn.Module, str]:
    """The unary yardstick and where it came from."""
    try:
        import iaffinity_plugins  # noqa: F401  (registers VGG16LargeFOV)
    except ImportError:  # no mmcv/mmseg here: the same net from torchvision
        return _torchvision_largefov().train(), 'torchvision layers'
    from mmengine.config import Config

    from iaffinity_plugins.registry import MODELS
    cfg = Config.fromfile('configs/_base_/models/deeplab_vgg16_largefov.py')
    cfg.model.pop('data_preprocessor')  # the benchmark feeds tensors
    model = MODELS.build(cfg.model).train()
    return (lambda image: model(image, mode='tensor')), 'iaffinity config'


def _spn_ops():
    """The op module, loaded by file: it needs torch only, so the benchmark
    also runs on hosts without mmcv/mmseg (importing the package would)."""
    path = osp.join(osp.dirname(__file__), '..', '..', 'iaffinity_plugins',
                    'models', 'ops', 'spn_scan.py')
    spec = importlib.util.spec_from_file_location('spn_scan', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _make_case(impl: str, size: int, batch: int) -> Callable[[], torch.Tensor]:
    """A closure running the forward of one case; inputs created here."""
    ops = _spn_ops()
    shape = (batch, CHANNELS, size, size)
    if impl == 'VGG16-LargeFOV':
        model, source = _unary_model()
        print(f'yardstick built from {source}', file=sys.stderr)
        image = torch.randn(batch, 3, size, size)
        return lambda: model(image)
    x = torch.randn(shape, requires_grad=True)
    if impl.startswith('custom 4-dir'):
        groups = int(impl.split('G=')[1])
        gates = torch.randn(batch, 12 * groups, size, size).requires_grad_()
        return lambda: ops.spn_propagate(x, gates)
    gates = [g.detach().requires_grad_()
             for g in ops.normalize_gates(*torch.randn((3, ) + shape))]
    fn = dict(naive=naive_scan, autograd=autograd_scan,
              custom=ops.spn_scan)[impl]
    return lambda: fn(x, *gates)


def run_case(impl: str, size: int, batch: int, repeat: int,
             threads: int) -> Dict[str, float]:
    """Time forward and forward+backward of one case in this process."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    forward = _make_case(impl, size, batch)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    fwd, both = [], []
    for i in range(repeat + 1):  # the first run is a warm-up
        start = time.perf_counter()
        with torch.no_grad():
            forward()
        mid = time.perf_counter()
        forward().sum().backward()
        end = time.perf_counter()
        if i:
            fwd.append(mid - start)
            both.append(end - mid)
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return dict(fwd_ms=1e3 * statistics.median(fwd),
                fwd_bwd_ms=1e3 * statistics.median(both),
                peak_mb=(peak_rss - base_rss) / 1024)


def _subprocess(impl: str, size: int, batch: int, repeat: int,
                threads: int) -> Dict[str, float]:
    case = json.dumps(dict(impl=impl, size=size, batch=batch, repeat=repeat,
                           threads=threads))
    out = subprocess.run([sys.executable, __file__, '--case', case],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: List[str] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true',
                        help='sizes 41 and 81, batch 1, one repeat')
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--case', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.case:
        print(json.dumps(run_case(**json.loads(args.case))))
        return
    sizes, batches = ((41, 81), (1, )) if args.quick else ((81, 161, 321),
                                                           (1, 4))
    repeat = 1 if args.quick else args.repeat
    print(f'command: {" ".join([sys.executable] + sys.argv)}')
    print(f'torch {torch.__version__}, {args.threads} threads, C={CHANNELS}, '
          f'one direction unless "4-dir"; fwd+bwd = forward then backward '
          f'(median of {repeat}); peak = ru_maxrss growth per subprocess\n')
    print('| size | batch | implementation | fwd ms | fwd+bwd ms | '
          'peak MB |\n|---|---|---|---|---|---|')
    for size in sizes:
        for batch in batches:
            results = {}
            for impl in IMPLS:
                if impl == 'naive' and (size > NAIVE_MAX_SIZE or batch > 1):
                    continue
                results[impl] = r = _subprocess(impl, size, batch, repeat,
                                                args.threads)
                print(f'| {size} | {batch} | {impl} | {r["fwd_ms"]:.1f} | '
                      f'{r["fwd_bwd_ms"]:.1f} | '
                      f'{r["peak_mb"]:.0f} |', flush=True)
            for groups in (1, 32):
                total = results[f'custom 4-dir G={groups}']['fwd_bwd_ms']
                unary = results['VGG16-LargeFOV']['fwd_bwd_ms']
                plain = 4 * results['autograd']['fwd_bwd_ms']
                print(f'| {size} | {batch} | 4-dir G={groups}: / VGG, '
                      f'4 x autograd / it | | {total / unary:.2f}x, '
                      f'{plain / total:.0f}x | |', flush=True)


if __name__ == '__main__':
    main()
