"""The one loop behind every label-writing stage (seeds, refine, mining).

Images are sharded across distributed ranks (rank r takes every world-size-th
image), so each label file is written by exactly one process; images whose
output already exists are skipped, which makes every writer resumable (all
outputs are written atomically, so an existing file is complete).

Skipping is only right for files made with the same options: the tools that
write a label folder record its options in ``options.json``
(:func:`record_options`) and refuse a folder made with other ones.
"""
import json
import os.path as osp
from typing import Any, Iterator, List, Tuple

from mmengine.dist import get_dist_info

from ..progress import progress
from .label_io import atomic_write_bytes

OPTIONS_FILE = 'options.json'
# Stands for a key that one of two option records lacks.
_MISSING = '(not set)'


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


def differing_options(old: Any, new: Any,
                      prefix: str = '') -> List[Tuple[str, Any, Any]]:
    """``(dotted key, old value, new value)`` of every leaf in which two
    option records (JSON trees) differ; a key only one of them has is
    given the value :data:`_MISSING` in the other."""
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return [] if old == new else [(prefix, old, new)]
    return [difference for key in sorted(set(old) | set(new))
            for difference in differing_options(
                old.get(key, _MISSING), new.get(key, _MISSING),
                f'{prefix}.{key}' if prefix else key)]


def record_options(out_dir: str, options: dict) -> None:
    """Record the options that determine the labels of ``out_dir`` in its
    ``options.json``, or check them against those already recorded.

    Call it before writing: a writer skips the images already in its
    folder, so a folder of other options would end up mixing two sets of
    labels. Every rank checks; rank 0 writes (atomically).

    Args:
        out_dir (str): The label folder (created when missing).
        options (dict): JSON-serialisable options (tuples are stored as
            lists, other objects as their ``str``).

    Raises:
        ValueError: ``out_dir`` holds an ``options.json`` of other options
            (naming the folder and each differing key).
    """
    text = json.dumps(options, indent=2, sort_keys=True, default=str)
    path = osp.join(out_dir, OPTIONS_FILE)
    if osp.isfile(path):
        with open(path) as file:
            stored = json.load(file)
        differences = differing_options(stored, json.loads(text))
        if differences:
            changes = '; '.join(f'{key}: {old!r} -> {new!r}'
                                for key, old, new in differences)
            raise ValueError(
                f'{out_dir} holds labels made with other options '
                f'({changes}; recorded in {path}). Use another --out, or '
                'move the folder away to write it afresh.')
    elif get_dist_info()[0] == 0:
        atomic_write_bytes(path, text.encode())
