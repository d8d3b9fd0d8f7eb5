"""Picture of the photo demo set: images above their colour masks.

Example::

    python tools/plot_photo_demo.py docs/images/photo_demo.png

Shows the first ``--num`` training images of ``--data-root``; without it,
of a set generated with the default arguments into a temp folder (the same
images as the default set's ``train_0000`` ...). Masks use the VOC palette;
a legend row names the classes.
"""
import argparse
import os
import os.path as osp
import tempfile
from typing import List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw, ImageFont

import iaffinity_plugins  # noqa: F401  (compat first, then mmseg)
from iaffinity_plugins.datasets.photo_demo import CLASSES, make_photo_demo
from iaffinity_plugins.labels.label_io import read_label, voc_palette

GAP = 4  # px between cells
LEGEND_HEIGHT = 22


def _fit(image: Image.Image, cell: int, resample: int) -> Image.Image:
    """``image`` scaled so that its long side is ``cell`` px."""
    scale = cell / max(image.size)
    size = (max(1, round(image.width * scale)),
            max(1, round(image.height * scale)))
    return image.resize(size, resample)


def photo_demo_grid(pairs: Sequence[Tuple[np.ndarray, np.ndarray]],
                    classes: Sequence[str], cell: int = 128) -> Image.Image:
    """Images (top row) over their colour masks, then a class legend.

    Args:
        pairs: ``(image, mask)``: (H, W, 3) uint8 RGB, (H, W) uint8 class
            indices (255 = ignore, drawn white).
        classes (Sequence[str]): The K class names, background first.
        cell (int): Each image's long side in the picture, px.

    Returns:
        Image.Image: An RGB picture, ``len(pairs)`` columns wide.
    """
    palette = voc_palette(256)
    palette[255] = 255
    width = len(pairs) * (cell + GAP) + GAP
    height = 2 * (cell + GAP) + GAP + LEGEND_HEIGHT
    canvas = Image.new('RGB', (width, height), 'white')
    for column, (image, mask) in enumerate(pairs):
        left = GAP + column * (cell + GAP)
        photo = _fit(Image.fromarray(image), cell, Image.BILINEAR)
        colours = _fit(Image.fromarray(palette[mask]), cell, Image.NEAREST)
        canvas.paste(photo, (left, GAP))
        canvas.paste(colours, (left, 2 * GAP + cell))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(13)
    x, y = GAP, 3 * GAP + 2 * cell
    for index, name in enumerate(classes):
        draw.rectangle((x, y + 2, x + 13, y + 15),
                       fill=tuple(int(v) for v in palette[index]),
                       outline='grey')
        draw.text((x + 17, y + 1), name, fill='black', font=font)
        x += 17 + int(draw.textlength(name, font=font)) + 12
    return canvas


def read_pairs(data_root: str,
               num: int) -> List[Tuple[np.ndarray, np.ndarray]]:
    """The first ``num`` training images of a set and their masks."""
    with open(osp.join(data_root, 'ImageSets', 'Segmentation',
                       'train.txt')) as f:
        ids = f.read().split()[:num]
    return [(np.asarray(Image.open(
        osp.join(data_root, 'JPEGImages', img_id + '.jpg')).convert('RGB')),
             read_label(osp.join(data_root, 'SegmentationClass',
                                 img_id + '.png'))) for img_id in ids]


def main(argv: Optional[List[str]] = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('out_png', help='the picture to write (.png)')
    parser.add_argument('--data-root',
                        help='an existing photo demo set (default: generate '
                        'the first training images of the default set)')
    parser.add_argument('--num', type=int, default=6, help='images shown')
    parser.add_argument('--cell', type=int, default=128,
                        help="each image's long side, px")
    args = parser.parse_args(argv)
    if args.data_root is not None:
        pairs = read_pairs(args.data_root, args.num)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            # The default set's first training images: its random draws
            # do not depend on num_train or num_val.
            root = make_photo_demo(osp.join(tmp, 'set'), num_train=args.num,
                                   num_val=0)
            pairs = read_pairs(root, args.num)
    picture = photo_demo_grid(pairs, CLASSES, args.cell)
    os.makedirs(osp.dirname(osp.abspath(args.out_png)), exist_ok=True)
    picture.save(args.out_png, optimize=True)
    print(f'wrote {args.out_png} ({picture.width} x {picture.height} px, '
          f'{osp.getsize(args.out_png) // 1024} KB)')
    return args.out_png


if __name__ == '__main__':
    main()
