"""Superpixels (paper Sec. 3.3): Felzenszwalb-Huttenlocher, SLIC, disk cache.

Superpixels are computed once per image and reused by the region smoothness
loss (eq. 8), the region classifier and the miner. Methods are extension
points: :func:`compute_superpixels` looks a method up by name through the
plugin manager, so an installed plugin can add or replace one.

Shapes: H x W image size. A superpixel map is ``(H, W) int32`` with ids
``0 .. R-1``.
"""
import hashlib
import json
import os.path as osp
import warnings
import zipfile
from typing import Any, Dict

import numpy as np
from skimage.segmentation import felzenszwalb, slic

from iaffinity_plugins.labels.label_io import atomic_save_npz
from iaffinity_plugins.plugins import get_extension, hookimpl

NPZ_KEY = 'superpixels'


def _check_image(image: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError('superpixels need an (H, W, 3) uint8 RGB image, got '
                         f'shape {image.shape} dtype {image.dtype}')


def felzenszwalb_superpixels(image: np.ndarray,
                             scale: float = 100,
                             sigma: float = 0.8,
                             min_size: int = 20) -> np.ndarray:
    """Felzenszwalb-Huttenlocher graph-based superpixels (the paper's choice).

    Args:
        image (np.ndarray): RGB image of shape (H, W, 3), uint8.
        scale (float): Higher means larger segments.
        sigma (float): Gaussian pre-smoothing width.
        min_size (int): Minimum segment size in pixels.

    Returns:
        np.ndarray: Superpixel ids of shape (H, W), int32.
    """
    _check_image(image)
    return felzenszwalb(image, scale=scale, sigma=sigma, min_size=min_size,
                        channel_axis=-1).astype(np.int32)


def slic_superpixels(image: np.ndarray,
                     n_segments: int = 200,
                     compactness: float = 10.0,
                     sigma: float = 1.0) -> np.ndarray:
    """SLIC superpixels (k-means in Lab + xy space).

    Args:
        image (np.ndarray): RGB image of shape (H, W, 3), uint8.
        n_segments (int): Approximate number of superpixels.
        compactness (float): Colour versus space trade-off; higher is squarer.
        sigma (float): Gaussian pre-smoothing width.

    Returns:
        np.ndarray: Superpixel ids of shape (H, W), int32, starting at 0.
    """
    _check_image(image)
    return slic(image, n_segments=n_segments, compactness=compactness,
                sigma=sigma, start_label=0,
                channel_axis=-1).astype(np.int32)


@hookimpl
def iaffinity_superpixel_methods() -> Dict[str, Any]:
    """Built-in superpixel methods."""
    return {'felzenszwalb': felzenszwalb_superpixels, 'slic': slic_superpixels}


def compute_superpixels(image: np.ndarray,
                        method: str = 'felzenszwalb',
                        **params: Any) -> np.ndarray:
    """Superpixels of ``image`` by the method registered as ``method``.

    Args:
        image (np.ndarray): RGB image of shape (H, W, 3), uint8.
        method (str): A name from the ``superpixel_method`` extensions.
        **params: Keyword arguments of that method.

    Returns:
        np.ndarray: Superpixel ids of shape (H, W), int32.
    """
    superpixels = get_extension('superpixel_method', method)(image, **params)
    return np.asarray(superpixels, dtype=np.int32)


def item_rgb(item: dict) -> np.ndarray:
    """The image of a packed dataset item as superpixel methods read it.

    Args:
        item (dict): A dataset item whose ``inputs`` is the (3, H, W) BGR
            uint8 tensor ``PackSegInputs`` makes.

    Returns:
        np.ndarray: The RGB image of shape (H, W, 3), uint8.
    """
    return item['inputs'].flip(0).permute(1, 2, 0).contiguous().numpy()


class SuperpixelCache:
    """Superpixels computed once per image and stored compressed on disk.

    Files live in ``cache_dir/<method>-<params hash>/<img_id>.npz``: changing
    the method or any parameter selects a new folder, so stale maps are never
    reused.

    Args:
        cache_dir (str): Root folder of the cache.
        method (str): Superpixel method name, see :func:`compute_superpixels`.
        **params: Keyword arguments of the method.
    """

    def __init__(self, cache_dir: str, method: str = 'felzenszwalb',
                 **params: Any) -> None:
        self.method = method
        self.params = params
        # sort_keys makes the hash independent of keyword order.
        key = json.dumps(params, sort_keys=True, default=str)
        digest = hashlib.sha1(key.encode()).hexdigest()[:10]
        self.folder = osp.join(cache_dir, f'{method}-{digest}')

    def path(self, img_id: str) -> str:
        """The cache file of image ``img_id``."""
        return osp.join(self.folder, f'{img_id}.npz')

    def get(self, img_id: str, image: np.ndarray) -> np.ndarray:
        """Cached superpixels of ``image``, computed and stored on a miss.

        Args:
            img_id (str): Image id, the cache file's stem.
            image (np.ndarray): RGB image of shape (H, W, 3), uint8.

        Returns:
            np.ndarray: Superpixel ids of shape (H, W), int32.
        """
        cached = self._load(img_id, image.shape[:2])
        if cached is not None:
            return cached
        superpixels = compute_superpixels(image, self.method, **self.params)
        atomic_save_npz(self.path(img_id), **{NPZ_KEY: superpixels})
        return superpixels

    def _load(self, img_id: str, shape: tuple):
        """The cached map, or None when missing, corrupt or the wrong size."""
        path = self.path(img_id)
        if not osp.exists(path):
            return None
        try:
            with np.load(path) as data:
                superpixels = data[NPZ_KEY].astype(np.int32)
        except (OSError, ValueError, KeyError, EOFError,
                zipfile.BadZipFile) as error:
            warnings.warn(f'corrupt superpixel cache file {path} ({error}); '
                          'recomputing it')
            return None
        if superpixels.shape != tuple(shape):
            # The same id with another image size (e.g. a resized copy):
            # the cached map cannot be used.
            warnings.warn(f'superpixel cache file {path} has shape '
                          f'{superpixels.shape}, the image {tuple(shape)}; '
                          'recomputing it')
            return None
        return superpixels
