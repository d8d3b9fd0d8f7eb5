"""Image and label loading whose errors name the file.

mmcv's ``LoadImageFromFile`` reports an undecodable image with an
``assert`` (gone under ``python -O``) and an empty file with a bare OpenCV
error that does not name it; mmseg's ``LoadAnnotations`` fails on a corrupt
PNG with ``'NoneType' object has no attribute 'squeeze'``. These subclasses
keep the loading code and turn any decoding failure into an ``OSError``
naming the file. A label map whose size differs from its image (loaded
before it) is refused with both files named: random crops would otherwise
cut different regions of the two, or fail later in the loss.
"""
from contextlib import contextmanager
from typing import Iterator, Optional

from mmcv.transforms import LoadImageFromFile
from mmseg.datasets.transforms import LoadAnnotations

from iaffinity_plugins.registry import TRANSFORMS


@contextmanager
def _naming_file(kind: str, path: str) -> Iterator[None]:
    """Re-raise decoding errors as ``OSError`` naming ``path``.

    ``FileNotFoundError`` already names the file and passes unchanged.
    """
    try:
        yield
    except FileNotFoundError:
        raise
    except Exception as error:
        raise OSError(f'cannot load {kind} {path}: '
                      f'{type(error).__name__}: {error}') from error


@TRANSFORMS.register_module()
class LoadImageWithCheck(LoadImageFromFile):
    """``LoadImageFromFile`` whose failures name the image file."""

    def transform(self, results: dict) -> Optional[dict]:
        with _naming_file('image', results['img_path']):
            return super().transform(results)


@TRANSFORMS.register_module()
class LoadAnnotationsWithCheck(LoadAnnotations):
    """mmseg's ``LoadAnnotations`` whose failures name the label file.

    Raises:
        OSError: the label map cannot be decoded.
        ValueError: its (H, W) differs from the loaded image's.
    """

    def _load_seg_map(self, results: dict) -> None:
        with _naming_file('label map', results['seg_map_path']):
            super()._load_seg_map(results)
        label_shape = results['gt_seg_map'].shape[:2]
        if 'img' in results and results['img'].shape[:2] != label_shape:
            raise ValueError(
                f"label map {results['seg_map_path']} is {label_shape} "
                f"(H, W) but its image {results.get('img_path')} is "
                f"{results['img'].shape[:2]}")
