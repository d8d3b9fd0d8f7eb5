"""Label maps on disk: VOC palette PNGs, read with checks, written atomically.

Every label folder of the EM loop (seeds, mined, refined labels) holds one
palette PNG per image, ``<img_id>.png``: an (H, W) ``uint8`` map of class
indices, 0 = background, 255 = unknown/ignore. Writes go through
:func:`atomic_write_bytes` (temp file in the same folder, fsync,
``os.replace``), so a killed run never leaves a half-written file behind:
readers see either the old file or the new one.
"""
import io
import os
import os.path as osp
import uuid
from typing import Optional, Sequence

import numpy as np
from PIL import Image

IGNORE_INDEX = 255


def voc_palette(num_colors: int = 256) -> np.ndarray:
    """The PASCAL VOC colour map (bits of the index interleaved into RGB).

    Returns:
        np.ndarray: (num_colors, 3) uint8; row 0 is black, row 1 (128, 0, 0).
    """
    ids = np.arange(num_colors)
    palette = np.zeros((num_colors, 3), dtype=np.int64)
    # Bit 3*i + c of the index becomes bit 7 - i of channel c: the VOC
    # devkit's loop over the index three bits at a time, vectorised over ids.
    for i in range(8):
        for channel in range(3):
            palette[:, channel] |= ((ids >> (3 * i + channel)) & 1) << (7 - i)
    return palette.astype(np.uint8)


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers never see a partial file.

    The bytes go to a hidden temp file in the destination folder (same file
    system, so ``os.replace`` is an atomic rename), are fsync'ed, then
    replace ``path``. On any failure the temp file is removed and ``path``
    keeps its previous content; an ``OSError`` (e.g. ``ENOSPC``, disk full)
    is re-raised with the same errno and a message naming ``path``, other
    errors unchanged. Missing parent folders are created.
    """
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp_path = osp.join(folder,
                        f'.{osp.basename(path)}.{uuid.uuid4().hex[:12]}.tmp')
    try:
        # os.open with 0o666 lets the umask decide permissions, like open();
        # tempfile.mkstemp would leave every label file owner-only (0o600).
        fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException as error:
        if osp.exists(tmp_path):
            os.unlink(tmp_path)
        if isinstance(error, OSError):
            # A failed write or fsync names no file, os.open only the temp.
            message = f'cannot write {path}: {error.strerror or error}'
            raise (OSError(error.errno, message) if error.errno is not None
                   else OSError(message)) from error
        raise


def atomic_save_npz(path: str, **arrays: np.ndarray) -> None:
    """``np.savez_compressed`` to exactly ``path`` (no '.npz' appended),
    atomically (see :func:`atomic_write_bytes`)."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def read_label(path: str) -> np.ndarray:
    """Read a label map from a palette ('P') or grayscale ('L') PNG.

    Returns:
        np.ndarray: (H, W) uint8 class indices (the palette is ignored).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file cannot be decoded or is not single-channel.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'label map not found: {path}')
    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            label = np.array(image)
    except (OSError, SyntaxError, ValueError) as error:
        raise ValueError(f'cannot decode label map {path}: {error}') from error
    if mode not in ('P', 'L'):
        raise ValueError(f'label map {path} must be a palette (P) or '
                         f'grayscale (L) image, got mode {mode!r}')
    return label


def write_label(path: str,
                label: np.ndarray,
                palette: Optional[np.ndarray] = None) -> None:
    """Write an (H, W) label map as a palette PNG, atomically.

    Args:
        path (str): Destination, usually ``<folder>/<img_id>.png``.
        label (np.ndarray): (H, W) integer class indices in 0..255.
        palette (np.ndarray, optional): (P, 3) uint8 colours, P <= 256.
            Defaults to :func:`voc_palette`.
    """
    if label.ndim != 2 or not np.issubdtype(label.dtype, np.integer):
        raise ValueError(f'label map for {path} must be a 2-D integer array, '
                         f'got shape {label.shape} dtype {label.dtype}')
    if label.size and (label.min() < 0 or label.max() > IGNORE_INDEX):
        raise ValueError(f'label map for {path} has values outside 0..255 '
                         f'(min {label.min()}, max {label.max()})')
    palette = voc_palette() if palette is None else np.asarray(palette)
    image = Image.fromarray(label.astype(np.uint8))
    # putpalette turns the 'L' image into a 'P' image with the same indices.
    image.putpalette(palette.astype(np.uint8).ravel().tolist())
    buffer = io.BytesIO()
    image.save(buffer, format='PNG')
    atomic_write_bytes(path, buffer.getvalue())


def check_label_values(label: np.ndarray, num_classes: int, path: str) -> None:
    """Raise when ``label`` holds a value that is neither a class nor 255.

    Args:
        label (np.ndarray): (H, W) class indices.
        num_classes (int): K, classes including background.
        path (str): The file ``label`` came from, named in the error.

    Raises:
        ValueError: naming ``path`` and the offending values.
    """
    values = np.unique(label)
    bad = values[(values >= num_classes) & (values != IGNORE_INDEX)]
    if bad.size:
        raise ValueError(
            f'label map {path} has values {bad.tolist()} outside the '
            f'{num_classes} classes (valid: 0..{num_classes - 1} and '
            f'{IGNORE_INDEX} = ignore)')


def check_label_shape(label_shape: Sequence[int], img_shape: Sequence[int],
                      path: str, img_path: str) -> None:
    """Raise when a label map's (H, W) differs from its image's.

    Args:
        label_shape, img_shape: (H, W) of the label map and of the image
            as loaded.
        path, img_path (str): Their files, named in the error.

    Raises:
        ValueError: naming both files and sizes (with a hint when the map
            fits the image turned by 90 degrees: an EXIF orientation).
    """
    label_shape, img_shape = tuple(label_shape[:2]), tuple(img_shape[:2])
    if label_shape == img_shape:
        return
    message = (f'label map {path} is {label_shape} (H, W) but its image '
               f'{img_path} is {img_shape}')
    if label_shape == img_shape[::-1]:
        message += (' (turned by 90 degrees: a photograph with an EXIF '
                    'orientation is loaded turned, so its mask must match '
                    'the turned image, or remove the orientation tag)')
    raise ValueError(message)
