"""Write COCO 2014 label PNGs, split and tags files once per split.

Example::

    python tools/convert_coco.py --data-root data/coco --split train2014
    python tools/convert_coco.py --data-root data/coco --split val2014

Reads ``<data-root>/annotations/instances_<split>.json``; writes
``SegmentationClass/<split>/*.png``, ``ImageSets/Segmentation/<split>.txt``,
``ImageSets/Segmentation/<split>_tags.txt`` and ``classes.txt``. Existing
PNGs are kept (an interrupted run resumes) unless ``--overwrite``.
"""
import argparse

import iaffinity_plugins  # noqa: F401  (compat first, then mmseg)
from iaffinity_plugins.datasets.coco import convert_coco_split


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data-root', required=True)
    parser.add_argument('--split', default='train2014')
    parser.add_argument(
        '--ann-file',
        default=None,
        help='defaults to <data-root>/annotations/instances_<split>.json')
    parser.add_argument('--overwrite', action='store_true')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    written = convert_coco_split(args.data_root, args.split, args.ann_file,
                                 args.overwrite)
    print(f'\nwrote {written} label maps to '
          f'{args.data_root}/SegmentationClass/{args.split}')


if __name__ == '__main__':
    main()
