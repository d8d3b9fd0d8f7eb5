"""Generate the procedural synthetic WSSS data set in VOC layout.

Example::

    python tools/make_synthetic.py --out data/synthetic --num-train 200 \
        --num-val 50 --seed 0
"""
import argparse
import os.path as osp
import time

import iaffinity_plugins  # noqa: F401  (compat first, then mmseg)
from iaffinity_plugins.datasets.synthetic import (CLASS_DEFS,
                                                  make_synthetic_dataset)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', required=True, help='output folder (new)')
    parser.add_argument('--num-train', type=int, default=200)
    parser.add_argument('--num-val', type=int, default=50)
    parser.add_argument('--min-size', type=int, default=96)
    parser.add_argument('--max-size', type=int, default=128)
    parser.add_argument(
        '--num-classes',
        type=int,
        default=5,
        help=f'foreground classes, at most {len(CLASS_DEFS)}')
    parser.add_argument('--max-objects', type=int, default=3)
    parser.add_argument(
        '--core-radius',
        type=float,
        default=0.75,
        help='textured core of each object, in object radii (lower: harder '
        'for CAMs; >= 2.5 textures whole objects)')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    start = time.perf_counter()
    out = make_synthetic_dataset(
        args.out,
        num_train=args.num_train,
        num_val=args.num_val,
        min_size=args.min_size,
        max_size=args.max_size,
        num_classes=args.num_classes,
        max_objects=args.max_objects,
        core_radius=args.core_radius,
        seed=args.seed)
    with open(osp.join(out, 'classes.txt')) as f:
        classes = f.read().split()
    print(f'wrote {args.num_train} train + {args.num_val} val images '
          f'({args.min_size}..{args.max_size} px, {len(classes) - 1} '
          f'foreground classes: {", ".join(classes[1:])}) to {out} in '
          f'{time.perf_counter() - start:.1f} s')


if __name__ == '__main__':
    main()
