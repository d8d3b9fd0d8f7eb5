"""PASCAL VOC 2012 + SBD for weakly-supervised segmentation (paper Sec. 4.1).

Splits (``ImageSets/Segmentation/<split>.txt``): ``train_aug`` (10,582
images, VOC train + SBD), ``train`` (1,464), ``val`` (1,449). Ground-truth
masks from ``SegmentationClassAug`` (SBD-converted, default) or
``SegmentationClass``. Image-level tags, per image, from the first source
that has it:

* ``'cls_labels'``: PSA/IRN's ``cls_labels.npy`` (dict img_id -> (20,)),
* ``'xml'``: object names in ``Annotations/<img_id>.xml``,
* ``'tags_file'``: our ``img_id class_a class_b`` text file,
* ``'masks'``: classes present in the ground-truth mask.
"""
import os.path as osp
import xml.etree.ElementTree as ET
from typing import Dict, Sequence

import numpy as np

from iaffinity_plugins.labels.label_io import voc_palette
from iaffinity_plugins.registry import DATASETS
from .tag_files import read_pickled_dict
from .voc_layout import TagTable, VOCLayoutDataset

VOC_CLASSES = ('background', 'aeroplane', 'bicycle', 'bird', 'boat',
               'bottle', 'bus', 'car', 'cat', 'chair', 'cow', 'diningtable',
               'dog', 'horse', 'motorbike', 'person', 'pottedplant', 'sheep',
               'sofa', 'train', 'tvmonitor')


def voc_image_id(key) -> str:
    """Normalise a ``cls_labels.npy`` key to a VOC image id.

    PSA stores ids as strings ('2007_000032'); IRN parses the split file
    with ``np.loadtxt(dtype=np.int32)``, which drops the underscore
    (2007000032), so integer keys get it back after the year.
    """
    if isinstance(key, (int, np.integer)):
        digits = str(int(key))
        return f'{digits[:4]}_{digits[4:]}'
    return str(key)


def read_cls_labels(path: str, num_foreground: int) -> TagTable:
    """Tags from PSA/IRN's ``cls_labels.npy``: {img_id: (K-1,) multi-hot}.

    The file is a pickled dict; it is read without running any code from
    it (:func:`~.tag_files.read_pickled_dict`).
    """
    table = read_pickled_dict(path)
    tags: TagTable = {}
    for key, value in table.items():
        value = np.asarray(value, dtype=np.float32)
        if value.shape != (num_foreground, ):
            raise ValueError(f'{path}: entry {key!r} has shape {value.shape}, '
                             f'expected ({num_foreground},)')
        tags[voc_image_id(key)] = value
    return tags


def read_xml_tags(path: str, classes: Sequence[str]) -> np.ndarray:
    """Tags from the object names of a VOC annotation XML file."""
    try:
        names = [obj.findtext('name', '').strip()
                 for obj in ET.parse(path).getroot().iter('object')]
    except ET.ParseError as error:
        raise ValueError(f'cannot parse annotation {path}: {error}') from error
    index: Dict[str, int] = {name: i for i, name in enumerate(classes)}
    tags = np.zeros(len(classes) - 1, dtype=np.float32)
    for name in names:
        if index.get(name, 0) == 0:
            raise ValueError(f'{path}: unknown object class {name!r}')
        tags[index[name] - 1] = 1
    return tags


@DATASETS.register_module()
class PascalVOCWSSSDataset(VOCLayoutDataset):
    """PASCAL VOC 2012 + SBD with image-level tags.

    Args:
        cls_labels_file (str): PSA/IRN tags, relative to ``data_root``.
        xml_dir (str): Annotation XML folder, relative to ``data_root``.
        **kwargs: :class:`VOCLayoutDataset` arguments.
    """

    METAINFO = dict(classes=VOC_CLASSES, palette=voc_palette(21).tolist())
    TAG_SOURCES = VOCLayoutDataset.TAG_SOURCES + ('cls_labels', 'xml')

    def __init__(self,
                 ann_file: str = 'ImageSets/Segmentation/train_aug.txt',
                 data_prefix: dict = dict(
                     img_path='JPEGImages',
                     seg_map_path='SegmentationClassAug'),
                 tag_sources: Sequence[str] = ('cls_labels', 'xml', 'masks'),
                 cls_labels_file: str = 'cls_labels.npy',
                 xml_dir: str = 'Annotations',
                 **kwargs) -> None:
        self.cls_labels_file = cls_labels_file
        self.xml_dir = xml_dir
        super().__init__(
            ann_file=ann_file,
            data_prefix=data_prefix,
            tag_sources=tag_sources,
            **kwargs)

    def _load_tag_table(self, source: str,
                        img_ids: Sequence[str]) -> TagTable:
        root = self.data_root or ''
        classes = self.metainfo['classes']
        if source == 'cls_labels':
            path = osp.join(root, self.cls_labels_file)
            if not osp.isfile(path):
                return {}
            return read_cls_labels(path, len(classes) - 1)
        if source == 'xml':
            xml_dir = osp.join(root, self.xml_dir)
            # Only the ids of this split: the folder also holds the 17k
            # detection-only images of VOC.
            paths = {i: osp.join(xml_dir, i + '.xml') for i in img_ids}
            return {
                img_id: read_xml_tags(path, classes)
                for img_id, path in paths.items() if osp.isfile(path)
            }
        return super()._load_tag_table(source, img_ids)
