"""Generate the photo demo set (scikit-image's photographs) in VOC layout.

Example::

    python tools/make_photo_demo.py data/photo_demo --num-train 400 \
        --num-val 100 --seed 0

The defaults are those of ``configs/iaffinity/photo_demo.py``, whose
``PhotoDemoDataset`` makes the same folder on first use (docs/datasets.md,
"The photo demo set").
"""
import argparse
import os.path as osp
import time
from typing import List, Optional

import iaffinity_plugins  # noqa: F401  (compat first, then mmseg)
from iaffinity_plugins.datasets.photo_demo import make_photo_demo


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('out_dir', help='output folder (must not exist)')
    parser.add_argument('--num-train', type=int, default=400)
    parser.add_argument('--num-val', type=int, default=100)
    parser.add_argument('--min-size', type=int, default=144,
                        help='least height and width, px')
    parser.add_argument('--max-size', type=int, default=224,
                        help='largest height and width, px')
    parser.add_argument('--max-objects', type=int, default=4,
                        help='objects per image, at most')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> str:
    """Write the set; returns its folder."""
    args = parse_args(argv)
    start = time.perf_counter()
    out = make_photo_demo(
        args.out_dir,
        num_train=args.num_train,
        num_val=args.num_val,
        min_size=args.min_size,
        max_size=args.max_size,
        max_objects=args.max_objects,
        seed=args.seed)
    with open(osp.join(out, 'classes.txt')) as f:
        classes = f.read().split()
    print(f'wrote {args.num_train} train + {args.num_val} val images '
          f'({args.min_size}..{args.max_size} px, {len(classes) - 1} '
          f'foreground classes: {", ".join(classes[1:])}) to {out} in '
          f'{time.perf_counter() - start:.1f} s')
    return out


if __name__ == '__main__':
    main()
