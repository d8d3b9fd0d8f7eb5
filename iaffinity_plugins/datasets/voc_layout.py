"""Any folder in PASCAL VOC layout, with image-level tags (paper Sec. 4.1).

Layout under ``data_root``::

    JPEGImages/<img_id>.jpg
    SegmentationClass/<img_id>.png        optional ground-truth masks
    ImageSets/Segmentation/<split>.txt    one image id per line
    classes.txt                           one class per line, background first
    tags.txt                              optional: ``img_id class_a class_b``

Shapes: K classes including background; tags are float32 (K-1,) multi-hot
over the foreground classes. Every item carries the keys of the data contract
in ``docs/architecture.md``.
"""
import logging
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.logging import print_log
from mmseg.datasets import BaseSegDataset
from PIL import Image

from iaffinity_plugins.labels.label_io import (IGNORE_INDEX,
                                               atomic_write_bytes,
                                               check_label_shape,
                                               check_label_values, read_label,
                                               voc_palette)
from iaffinity_plugins.registry import DATASETS

TagTable = Dict[str, np.ndarray]
# EXIF orientations that turn an image by 90 degrees (mmcv's cv2 loading
# applies them, so the loaded image is H x W of the turned picture).
EXIF_ORIENTATION = 0x0112
TURNED_ORIENTATIONS = (5, 6, 7, 8)


def loaded_image_shape(path: str) -> Tuple[int, int]:
    """(H, W) of the image file as ``LoadImageFromFile`` will load it,
    from its header (its EXIF orientation applied), without decoding it.

    Raises:
        OSError: the file is not an image, naming it.
    """
    try:
        with Image.open(path) as image:
            width, height = image.size
            # Pillow's TIFF reader reports the turned size already.
            turned = image.format != 'TIFF' and image.getexif().get(
                EXIF_ORIENTATION) in TURNED_ORIENTATIONS
    except FileNotFoundError:
        raise
    except Exception as error:
        raise OSError(f'cannot load image {path}: {type(error).__name__}: '
                      f'{error}') from error
    return (width, height) if turned else (height, width)


def tags_from_mask(label: np.ndarray, num_classes: int) -> np.ndarray:
    """Multi-hot tags of the classes present in a mask.

    Args:
        label (np.ndarray): (H, W) class indices, 255 = ignore.
        num_classes (int): K, including background.

    Returns:
        np.ndarray: (K-1,) float32; background and 255 are never tags.
    """
    present = np.unique(label)
    present = present[(present > 0) & (present != IGNORE_INDEX)]
    tags = np.zeros(num_classes - 1, dtype=np.float32)
    tags[present - 1] = 1
    return tags


def read_id_list(path: str) -> List[Tuple[int, str]]:
    """Image ids of a split file with their 1-based line numbers.

    Blank lines are skipped. A line may also be a path (the DeepLab list
    format ``/JPEGImages/x.jpg /SegmentationClassAug/x.png`` used by some
    SBD releases): its first token's file stem is the id.

    Raises:
        FileNotFoundError: the split file is missing.
        ValueError: an id appears twice (naming both lines), or the file
            lists no id at all.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'split file not found: {path}')
    ids: List[Tuple[int, str]] = []
    first_line: Dict[str, int] = {}
    with open(path) as f:
        for line_no, line in enumerate(f, start=1):
            tokens = line.split()
            if not tokens:
                continue
            img_id = osp.splitext(osp.basename(tokens[0]))[0]
            if img_id in first_line:
                raise ValueError(
                    f'{path} line {line_no}: duplicate image id {img_id!r} '
                    f'(first at line {first_line[img_id]})')
            first_line[img_id] = line_no
            ids.append((line_no, img_id))
    if not ids:
        # An empty data set would only fail later, obscurely (mmengine's
        # serialisation), or hang (an InfiniteSampler over nothing).
        raise ValueError(f'split file {path} lists no image id')
    return ids


def read_class_list(path: str) -> Tuple[str, ...]:
    """Class names, one per line, background first (blank lines skipped)."""
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'class list file not found: {path} (one class per line, '
            'background first; or give metainfo=dict(classes=...))')
    with open(path) as f:
        classes = tuple(line.strip() for line in f if line.strip())
    if len(classes) < 2:
        raise ValueError(f'{path} must list background and at least one '
                         f'foreground class, got {list(classes)}')
    if len(set(classes)) != len(classes):
        raise ValueError(f'{path} lists a class twice: {list(classes)}')
    return classes


def read_tags_file(path: str, classes: Sequence[str]) -> TagTable:
    """Parse a tags file: ``img_id class_a class_b`` per line.

    Class names with spaces are written with underscores
    (``traffic_light``). An id alone on its line has no foreground tag.

    Returns:
        dict: img_id -> (K-1,) float32 multi-hot.

    Raises:
        ValueError: unknown or background class name, or duplicate id,
            naming the file and line.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'tags file not found: {path}')
    index = {name.replace(' ', '_'): i for i, name in enumerate(classes)}
    table: TagTable = {}
    with open(path) as f:
        for line_no, line in enumerate(f, start=1):
            tokens = line.split()
            if not tokens:
                continue
            img_id, names = tokens[0], tokens[1:]
            if img_id in table:
                raise ValueError(
                    f'{path} line {line_no}: duplicate image id {img_id!r}')
            tags = np.zeros(len(classes) - 1, dtype=np.float32)
            for name in names:
                if index.get(name, 0) == 0:
                    raise ValueError(
                        f'{path} line {line_no}: {name!r} is not a foreground '
                        f'class; known: {list(index)[1:]}')
                tags[index[name] - 1] = 1
            table[img_id] = tags
    return table


def write_tags_file(path: str, tags: TagTable, classes: Sequence[str]) -> None:
    """Write ``img_id class_a class_b`` lines (inverse of
    :func:`read_tags_file`), atomically.

    Args:
        tags (dict): img_id -> (K-1,) multi-hot, written in key order.
        classes (Sequence[str]): The K class names, background first.
    """
    names = [name.replace(' ', '_') for name in classes[1:]]
    lines = [
        ' '.join([img_id] + [names[i] for i in np.flatnonzero(multi_hot)])
        for img_id, multi_hot in tags.items()
    ]
    atomic_write_bytes(path, ''.join(line + '\n' for line in lines).encode())


@DATASETS.register_module()
class VOCLayoutDataset(BaseSegDataset):
    """A VOC-layout folder with image-level tags and optional pseudo labels.

    Args:
        classes_file (str): Class list, relative to ``data_root``; read only
            when neither ``metainfo`` nor ``METAINFO`` gives classes.
        tags_file (str, optional): Tags file relative to ``data_root``.
        label_dir (str, optional): Folder of pseudo-label PNGs
            ``<img_id>.png`` (used as given: work dirs are not under
            ``data_root``). When set, ``seg_map_path`` points there and the
            ground truth stays in ``gt_seg_map_path``.
        tag_sources (Sequence[str]): Where tags come from, in order of
            preference, per image; a subset of :attr:`TAG_SOURCES`.
            ``'masks'`` derives tags from the ground-truth mask.
        **kwargs: :class:`mmseg.datasets.BaseSegDataset` arguments.
    """

    TAG_SOURCES: Tuple[str, ...] = ('tags_file', 'masks')

    def __init__(self,
                 ann_file: str = 'ImageSets/Segmentation/train.txt',
                 data_prefix: dict = dict(
                     img_path='JPEGImages', seg_map_path='SegmentationClass'),
                 classes_file: str = 'classes.txt',
                 tags_file: Optional[str] = None,
                 label_dir: Optional[str] = None,
                 tag_sources: Sequence[str] = ('tags_file', 'masks'),
                 metainfo: Optional[dict] = None,
                 **kwargs) -> None:
        unknown = set(tag_sources) - set(self.TAG_SOURCES)
        if unknown:
            raise ValueError(f'unknown tag sources {sorted(unknown)}; '
                             f'{type(self).__name__} knows {self.TAG_SOURCES}')
        data_root = kwargs.get('data_root')
        if data_root is not None and not osp.isdir(data_root):
            raise FileNotFoundError(f'data_root not found: {data_root}')
        self.tags_file = tags_file
        self.label_dir = label_dir
        self.tag_sources = tuple(tag_sources)
        super().__init__(
            ann_file=ann_file,
            data_prefix=data_prefix,
            metainfo=self._metainfo_from_data(metainfo, data_root,
                                              classes_file),
            **kwargs)

    @classmethod
    def _metainfo_from_data(cls, metainfo: Optional[dict],
                            data_root: Optional[str],
                            classes_file: str) -> dict:
        """Fill in classes (from the class list file) and the VOC palette.

        Done before ``BaseSegDataset.__init__``, which needs the classes to
        build its label map and palette.
        """
        metainfo = dict(metainfo or {})
        if 'classes' not in metainfo and 'classes' not in cls.METAINFO:
            metainfo['classes'] = read_class_list(
                osp.join(data_root or '', classes_file))
        num_classes = len(metainfo.get('classes', cls.METAINFO.get('classes')))
        metainfo.setdefault('palette', voc_palette(num_classes).tolist())
        return metainfo

    @property
    def num_classes(self) -> int:
        """K, classes including background."""
        return len(self.metainfo['classes'])

    def load_data_list(self) -> List[dict]:
        """One dict per split line with the keys of the data contract."""
        if self.label_map is not None:
            # Tags are indexed by the data's own classes; a class subset
            # would silently misalign them.
            raise ValueError(f'{type(self).__name__} does not support class '
                             f'subsets (metainfo classes differ from '
                             f'METAINFO): {self.metainfo["classes"]}')
        img_dir = self.data_prefix['img_path']
        if self.label_dir is not None and not osp.isdir(self.label_dir):
            raise FileNotFoundError(f'label_dir not found: {self.label_dir}')
        split = read_id_list(self.ann_file)
        resolve_tags = self._tag_resolver([img_id for _, img_id in split])
        data_list = []
        for line_no, img_id in split:
            where = f'{self.ann_file} line {line_no}'
            img_path = osp.join(img_dir, img_id + self.img_suffix)
            if not osp.isfile(img_path):
                raise FileNotFoundError(
                    f'image {img_path} listed in {where} does not exist')
            gt_path = self._gt_path(img_id)
            data_list.append(
                dict(
                    img_path=img_path,
                    img_id=img_id,
                    tags=resolve_tags(img_id, img_path, gt_path, where),
                    seg_map_path=self._seg_map_path(img_id, gt_path),
                    gt_seg_map_path=gt_path,
                    label_map=None,
                    reduce_zero_label=self.reduce_zero_label,
                    seg_fields=[]))
        self._warn_untagged(data_list)
        return data_list

    def _mask_path(self, img_id: str) -> Optional[str]:
        """Where this image's ground-truth mask would be (None: no mask
        folder configured)."""
        gt_dir = self.data_prefix.get('seg_map_path')
        return osp.join(gt_dir, img_id + self.seg_map_suffix) if gt_dir \
            else None

    def _gt_path(self, img_id: str) -> Optional[str]:
        """The ground-truth mask if this image has one (masks are optional)."""
        path = self._mask_path(img_id)
        return path if path is not None and osp.isfile(path) else None

    def _seg_map_path(self, img_id: str, gt_path: Optional[str]
                      ) -> Optional[str]:
        """The map the pipeline's ``LoadAnnotations`` reads."""
        if self.label_dir is None:
            return gt_path
        path = osp.join(self.label_dir, img_id + '.png')
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'pseudo label {path} missing for image {img_id!r} '
                f'(label_dir={self.label_dir})')
        return path

    def _tag_resolver(
        self, img_ids: Sequence[str]
    ) -> Callable[[str, str, Optional[str], str], np.ndarray]:
        """``(img_id, img_path, gt_path, where) -> tags`` trying
        :attr:`tag_sources` in order; each source's table (for ``img_ids``)
        is loaded once, on first need."""
        tables: Dict[str, TagTable] = {}

        def resolve(img_id: str, img_path: str, gt_path: Optional[str],
                    where: str) -> np.ndarray:
            for source in self.tag_sources:
                if source == 'masks':
                    if gt_path is not None:
                        return self._tags_from_mask_file(gt_path, img_path)
                    continue
                if source not in tables:
                    tables[source] = self._load_tag_table(source, img_ids)
                if img_id in tables[source]:
                    return tables[source][img_id]
            raise ValueError(
                f'no tags for image {img_id!r} ({where}): none of the tag '
                f'sources {self.tag_sources} knows it (tags file: '
                f'{self._tags_file_path()}, ground-truth mask: '
                f'{self._mask_path(img_id)}, missing)')

        return resolve

    def _load_tag_table(self, source: str,
                        img_ids: Sequence[str]) -> TagTable:
        """Tags one non-mask source knows (at least for ``img_ids``, the
        split's ids); subclasses add sources."""
        assert source == 'tags_file', source
        path = self._tags_file_path()
        if path is None:
            return {}
        if not osp.isfile(path):
            # Own data often comes without a tags file: the masks then give
            # the tags (an image with neither fails in the resolver, which
            # names both paths).
            print_log(f'tags file {path} not found: tags of {self.ann_file} '
                      'come from the ground-truth masks', logger='current',
                      level=logging.WARNING)
            return {}
        return read_tags_file(path, self.metainfo['classes'])

    def _tags_file_path(self) -> Optional[str]:
        if self.tags_file is None:
            return None
        return osp.join(self.data_root or '', self.tags_file)

    def _tags_from_mask_file(self, path: str, img_path: str) -> np.ndarray:
        """Tags of the mask ``path`` of the image ``img_path``.

        Raises:
            ValueError: the mask holds a value outside the class list, or
                its size differs from the image's (it may be another
                image's mask; checked here, from the image file's header,
                rather than after the first stage has trained).
        """
        label = read_label(path)
        check_label_values(label, self.num_classes, path)
        check_label_shape(label.shape, loaded_image_shape(img_path), path,
                          img_path)
        return tags_from_mask(label, self.num_classes)

    def _warn_untagged(self, data_list: List[dict]) -> None:
        """All-background images are legitimate: keep them, but say so."""
        untagged = [d['img_id'] for d in data_list if not d['tags'].any()]
        if untagged:
            print_log(
                f'{len(untagged)} of {len(data_list)} images in '
                f'{self.ann_file} have no foreground tag (kept as '
                f'all-background images), e.g. {untagged[:5]}',
                logger='current',
                level=logging.WARNING)
