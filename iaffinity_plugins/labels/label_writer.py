"""The one loop behind every label-writing stage (seeds, refine, mining).

Images are sharded across distributed ranks (rank r takes every world-size-th
image), so each label file is written by exactly one process; images whose
output already exists are skipped, which makes every writer resumable.
"""
import os.path as osp
from typing import Iterator, Tuple

from mmengine.dist import get_dist_info
from tqdm import tqdm


def images_to_write(dataset, out_dir: str, progress: bool = True,
                    desc: str = 'labels',
                    suffix: str = '.png') -> Iterator[Tuple[dict, str]]:
    """Yield ``(item, img_id)`` for this rank's images not yet in ``out_dir``.

    Args:
        dataset: An mmengine ``BaseDataset`` whose data infos have ``img_id``.
        out_dir (str): Folder holding ``<img_id><suffix>`` outputs.
        progress (bool): Show a progress bar (rank 0 only).
        desc (str): Progress bar label.
        suffix (str): Output file suffix that marks an image as done.
    """
    rank, world_size = get_dist_info()
    pending = []
    for index in range(rank, len(dataset), world_size):
        img_id = dataset.get_data_info(index)['img_id']
        if not osp.exists(osp.join(out_dir, img_id + suffix)):
            pending.append((index, img_id))
    for index, img_id in tqdm(pending, desc=desc, unit='img',
                              disable=not progress or rank != 0):
        # prepare_data, not __getitem__: in train mode mmengine replaces a
        # failing item by a random other one, which would mislabel files.
        item = dataset.prepare_data(index)
        if item is None:
            raise RuntimeError(f'the pipeline dropped image {img_id!r} '
                               f'(index {index}) of {type(dataset).__name__}')
        yield item, img_id
