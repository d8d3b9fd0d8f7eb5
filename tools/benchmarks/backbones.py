"""Speed and peak memory of the backbones on CPU (issue 15 benchmark).

``python tools/benchmarks/backbones.py [--iters 2] [--warmup 1]
[--threads 2] [--batch 16] [--sizes 128 321] [--strides 8 16]
[--models lite0 lite2 resnet18_narrow vgg16_largefov]``

Backbones alone, random init: EfficientNet-Lite0/2 (last level, in
contiguous and ``channels_last`` memory format), the synthetic demo's narrow
dilated ResNet-18 (stem/base 16 channels, last stage) and VGG16-LargeFOV
(pool5; its output stride is always 8). For each (backbone, memory format,
size, output stride) one forked process times ``--iters`` inference passes
(no grad, batch ``--batch``), then ``--iters`` training iterations
(forward, loss = mean of the squared features, backward, SGD step), each
after ``--warmup`` untimed ones. Peak memory is the child's peak RSS
(``resource.getrusage(...).ru_maxrss``), which starts from the ~0.5 GiB of
libraries the parent imported before forking; it is read after the
inference passes and again after the training ones: training holds every
activation for the backward pass, so its peak is at least the inference one
and the second reading is its own.
Prints a markdown table and the command.
"""
import argparse
import multiprocessing
import resource
import sys
import time

import iaffinity_plugins  # noqa: F401  (before mmseg: compat + registration)
import torch

from iaffinity_plugins.registry import MODELS

NAMES = {
    'lite0': 'EfficientNet-Lite0',
    'lite2': 'EfficientNet-Lite2',
    'resnet18_narrow': 'ResNetV1c-18, 16 base channels (demo)',
    'vgg16_largefov': 'VGG16-LargeFOV',
}


def backbone_cfg(name: str, stride: int, channels_last: bool) -> dict:
    """The config of one benchmarked backbone at output stride ``stride``."""
    if name.startswith('lite'):
        return dict(type='EfficientNetLite', arch=name, out_indices=(4, ),
                    output_stride=stride, channels_last=channels_last)
    if name == 'vgg16_largefov':
        return dict(type='VGG16LargeFOV', out_indices=(4, ))
    # configs/iaffinity/synthetic_demo.py's `backbone` when this was
    # written (stride 8); stride 16 strides stage 3 instead of dilating it.
    strides, dilations = ((1, 2, 1, 1), (1, 1, 2, 4)) if stride == 8 else (
        (1, 2, 2, 1), (1, 1, 1, 2))
    return dict(type='ResNetV1c', depth=18, stem_channels=16,
                base_channels=16, strides=strides, dilations=dilations,
                out_indices=(3, ), contract_dilation=True,
                norm_cfg=dict(type='BN', requires_grad=True))


def _peak_rss_mib() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _seconds_per_step(step, iters: int, warmup: int) -> float:
    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(iters):
        step()
    return (time.perf_counter() - start) / iters


def run_case(name: str, memory_format: str, size: int, stride: int,
             batch: int, iters: int, warmup: int, threads: int) -> dict:
    """Time inference, then training, of one backbone in this process."""
    torch.set_num_threads(threads)
    backbone = MODELS.build(backbone_cfg(name, stride,
                                         memory_format == 'channels_last'))
    inputs = torch.randn(batch, 3, size, size)
    backbone.eval()

    def infer():
        with torch.no_grad():
            backbone(inputs)

    infer_seconds = _seconds_per_step(infer, iters, warmup)
    infer_rss = _peak_rss_mib()
    backbone.train()
    optimizer = torch.optim.SGD(backbone.parameters(), lr=1e-3, momentum=0.9)

    def train():
        loss = backbone(inputs)[-1].square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    train_seconds = _seconds_per_step(train, iters, warmup)
    with torch.no_grad():
        feature = backbone(inputs[:1])[-1]
    return dict(model=name, memory_format=memory_format, size=size,
                stride=stride, batch=batch, feature=list(feature.shape[1:]),
                train_iters_per_s=1 / train_seconds,
                train_peak_rss_mib=_peak_rss_mib(),
                infer_images_per_s=batch / infer_seconds,
                infer_peak_rss_mib=infer_rss)


def cases(models, sizes, strides):
    """(model, memory format, size, stride) of every benchmarked case."""
    for name in models:
        formats = (['contiguous', 'channels_last'] if name.startswith('lite')
                   else ['contiguous'])
        for size in sizes:
            for stride in ([8] if name == 'vgg16_largefov' else strides):
                for memory_format in formats:
                    yield name, memory_format, size, stride


def markdown_table(rows: list) -> str:
    lines = ['| backbone | memory format | size | output stride | features '
             '(C, h, w) | train it/s | train peak RSS (MiB) | infer '
             'images/s | infer peak RSS (MiB) |',
             '| --- | --- | --- | --- | --- | --- | --- | --- | --- |']
    for row in rows:
        lines.append('| ' + ' | '.join([
            NAMES[row['model']], row['memory_format'], str(row['size']),
            str(row['stride']), 'x'.join(map(str, row['feature'])),
            f"{row['train_iters_per_s']:.3f}",
            f"{row['train_peak_rss_mib']:.0f}",
            f"{row['infer_images_per_s']:.1f}",
            f"{row['infer_peak_rss_mib']:.0f}"]) + ' |')
    return '\n'.join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--iters', type=int, default=2)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--batch', type=int, default=16)
    parser.add_argument('--sizes', type=int, nargs='+', default=[128, 321])
    parser.add_argument('--strides', type=int, nargs='+', default=[8, 16],
                        choices=[8, 16])
    parser.add_argument('--models', nargs='+', default=list(NAMES),
                        choices=list(NAMES))
    args = parser.parse_args()
    rows = []
    start = time.perf_counter()
    # fork, not spawn: the children reuse the parent's imports (which start
    # no torch threads), and each child's peak RSS is its own case's.
    context = multiprocessing.get_context('fork')
    for case in cases(args.models, args.sizes, args.strides):
        with context.Pool(1, maxtasksperchild=1) as pool:
            rows.append(pool.apply(run_case, (*case, args.batch, args.iters,
                                              args.warmup, args.threads)))
        print(f'done {case} after {time.perf_counter() - start:.0f} s',
              file=sys.stderr)
    print(f'batch {args.batch}, torch.set_num_threads({args.threads}), '
          f'{args.iters} timed iterations after {args.warmup} warm-up, '
          f'random init, CPU, {time.perf_counter() - start:.0f} s in all\n')
    print(markdown_table(rows))
    print('\ncommand: python ' + ' '.join(sys.argv))


if __name__ == '__main__':
    main()
