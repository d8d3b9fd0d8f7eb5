"""The one loop behind every label-writing stage (seeds, refine, mining).

Images are sharded across distributed ranks (rank r takes every world-size-th
image), so each label file is written by exactly one process; images whose
output already exists are skipped, which makes every writer resumable (all
outputs are written atomically, so an existing file is complete).
"""
import os.path as osp
from typing import Iterator, List, Tuple

from mmengine.dist import get_dist_info

from ..progress import progress


def pending_images(dataset, out_dir: str,
                   suffix: str = '.png') -> Tuple[List[Tuple[int, str]], int]:
    """This rank's images whose ``<img_id><suffix>`` is not in ``out_dir``.

    Args:
        dataset: An mmengine ``BaseDataset`` whose data infos have ``img_id``.
        out_dir (str): Folder of the outputs.
        suffix (str): Output file suffix that marks an image as done.

    Returns:
        tuple: ``[(index, img_id), ...]`` still to write, and the number of
        this rank's images already written.
    """
    rank, world_size = get_dist_info()
    pending, done = [], 0
    for index in range(rank, len(dataset), world_size):
        img_id = dataset.get_data_info(index)['img_id']
        if osp.exists(osp.join(out_dir, img_id + suffix)):
            done += 1
        else:
            pending.append((index, img_id))
    return pending, done


def load_images(dataset, pending: List[Tuple[int, str]],
                show_progress: bool = True,
                desc: str = 'labels') -> Iterator[Tuple[dict, str]]:
    """Yield ``(item, img_id)`` for ``pending``, with a progress bar on rank 0.

    Raises:
        RuntimeError: the pipeline dropped an image (naming it).
    """
    rank, _ = get_dist_info()
    for index, img_id in progress(pending, desc=desc, unit='img',
                                  disable=not show_progress or rank != 0):
        # prepare_data, not __getitem__: in train mode mmengine replaces a
        # failing item by a random other one, which would mislabel files.
        item = dataset.prepare_data(index)
        if item is None:
            raise RuntimeError(f'the pipeline dropped image {img_id!r} '
                               f'(index {index}) of {type(dataset).__name__}')
        yield item, img_id


def images_to_write(dataset, out_dir: str, show_progress: bool = True,
                    desc: str = 'labels') -> Iterator[Tuple[dict, str]]:
    """``load_images`` over this rank's images not yet in ``out_dir``."""
    pending, _ = pending_images(dataset, out_dir)
    return load_images(dataset, pending, show_progress, desc)
