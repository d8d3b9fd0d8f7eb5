"""A photographic WSSS demo set composited from photographs that ship with
scikit-image (``skimage.data``): nothing is downloaded.

Shapes: H x W image size; K = 6 classes with background (index 0).

Objects (the classes) are cut from those photographs with masks made by
fixed, deterministic rules (:func:`object_sprites`):

    cat         chelsea.png, an ellipse over the head
    cup         coffee.png, the cup and its saucer
    motorcycle  motorcycle_left.png, the near pixels of its stereo disparity
    face        the 200 face crops of lfw_subset.npy, an ellipse each
    coin        coins.png, Otsu-thresholded coins (one sprite per coin)

Their discriminative parts (a cat's eyes, the cup, the engine and wheels)
are smaller than the objects, which is the error a CAM makes and affinity
learning fixes. Each image is a photographic background (brick, grass and
gravel textures tinted, the Hubble deep field, a stained tissue, the lawn
of camera.png, the launch pads of rocket.jpg, the moon) with clutter that
is background too (pieces of astronaut.png, the logo, the colour wheel,
text, a retina), then 1-3 objects of several sizes, flipped, scaled,
colour-jittered, overlapping (later objects occlude earlier ones) and cut
by the image border. Masks are the composited object masks; the set has no
tags file (tags come from the masks, as for a user's photographs).

:func:`make_photo_demo` writes the VOC layout (docs/datasets.md);
:class:`PhotoDemoDataset` generates it on first use.
"""
import os
import os.path as osp
from functools import lru_cache
from typing import Dict, List, NamedTuple, Optional, Tuple

import numpy as np
import skimage
import skimage.data
from PIL import Image
from scipy import ndimage as ndi
from skimage.filters import threshold_otsu

from iaffinity_plugins.datasets.generated import (ensure_generated,
                                                  generate_once)
from iaffinity_plugins.datasets.voc_layout import VOCLayoutDataset
from iaffinity_plugins.labels.label_io import (atomic_write_bytes,
                                               voc_palette, write_label)
from iaffinity_plugins.registry import DATASETS

CLASSES = ('background', 'cat', 'cup', 'motorcycle', 'face', 'coin')
PARAMS_FILE = 'photo_demo.json'


class Sprite(NamedTuple):
    """An object cut from a photograph: (h, w, 3) uint8 RGB, (h, w) bool."""
    rgb: np.ndarray
    mask: np.ndarray


class ClassSpec(NamedTuple):
    """How a class is placed: its object size as a fraction of the image's
    short side (uniform in ``size``) and how many instances (1..max)."""
    size: Tuple[float, float]
    max_instances: int


CLASS_SPECS = {
    'cat': ClassSpec((0.45, 0.85), 1),
    'cup': ClassSpec((0.40, 0.75), 1),
    'motorcycle': ClassSpec((0.55, 0.95), 1),
    'face': ClassSpec((0.20, 0.40), 2),
    'coin': ClassSpec((0.15, 0.30), 3),
}


def _data_file(name: str) -> str:
    return osp.join(osp.dirname(skimage.data.__file__), name)


def _ellipse(height: int, width: int, cy: float, cx: float, ry: float,
             rx: float) -> np.ndarray:
    """(height, width) bool ellipse; centre and radii in image fractions."""
    y, x = np.mgrid[:height, :width]
    return ((y / height - cy) / ry)**2 + ((x / width - cx) / rx)**2 <= 1


def _crop_to_mask(rgb: np.ndarray, mask: np.ndarray) -> Sprite:
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    box = np.s_[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    return Sprite(np.ascontiguousarray(rgb[box]), mask[box])


def _grey_to_rgb(grey: np.ndarray, tint=(1.0, 1.0, 1.0)) -> np.ndarray:
    grey = grey.astype(np.float32)
    if grey.max() <= 1:
        grey = grey * 255
    return np.clip(grey[..., None] * np.asarray(tint, np.float32), 0,
                   255).astype(np.uint8)


def _largest_component(mask: np.ndarray) -> np.ndarray:
    components, count = ndi.label(mask)
    sizes = ndi.sum(mask, components, range(1, count + 1))
    return components == int(np.argmax(sizes)) + 1


@lru_cache(maxsize=1)
def object_sprites() -> Dict[str, Tuple[Sprite, ...]]:
    """Every class's sprites, cut from the shipped photographs (fixed rules,
    so the same on every machine)."""
    cat = skimage.data.chelsea()
    coffee = skimage.data.coffee()
    height, width = coffee.shape[:2]
    cup = (_ellipse(height, width, 0.55, 0.44, 0.44, 0.33)
           | _ellipse(height, width, 0.25, 0.48, 0.22, 0.17))
    # The near pixels of the stereo pair's disparity are the motorcycle.
    motorcycle = skimage.data.stereo_motorcycle()[0]
    disparity = np.load(_data_file('motorcycle_disp.npz'))['arr_0']
    near = np.isfinite(disparity) & (disparity > 48)
    near[445:] = False  # the floor in front of the wheels is near too
    near = _largest_component(near)
    near = ndi.binary_fill_holes(ndi.binary_closing(near, iterations=3))
    faces = np.load(_data_file('lfw_subset.npy'))
    face_mask = _ellipse(25, 25, 0.5, 0.5, 0.52, 0.44)
    coins = skimage.data.coins()
    bright = ndi.binary_fill_holes(
        ndi.binary_opening(coins > threshold_otsu(coins), iterations=2))
    components, count = ndi.label(bright)
    coin_sprites = []
    for index, box in enumerate(ndi.find_objects(components), start=1):
        mask = components[box] == index
        # Single coins only: not the bright corner, not specks.
        if 800 <= mask.sum() <= 4000:
            coin_sprites.append(Sprite(
                _grey_to_rgb(coins[box], (1.0, 0.92, 0.75)), mask))
    return {
        'cat': (_crop_to_mask(cat, _ellipse(*cat.shape[:2], 0.64, 0.50,
                                            0.66, 0.44)), ),
        'cup': (_crop_to_mask(coffee, cup), ),
        'motorcycle': (_crop_to_mask(motorcycle, near), ),
        'face': tuple(Sprite(_grey_to_rgb(face, (1.0, 0.9, 0.8)), face_mask)
                      for face in faces),
        'coin': tuple(coin_sprites),
    }


@lru_cache(maxsize=1)
def background_sources() -> Tuple[np.ndarray, ...]:
    """(h, w, 3) uint8 photographs to crop backgrounds from (no class in
    them)."""
    data = skimage.data
    rocket = data.rocket()
    camera = data.camera()
    return (
        _grey_to_rgb(data.brick()), _grey_to_rgb(data.grass()),
        _grey_to_rgb(data.gravel()), data.hubble_deep_field(),
        data.immunohistochemistry(), _grey_to_rgb(camera[300:]),
        rocket[:, :220], _grey_to_rgb(data.moon()))


@lru_cache(maxsize=1)
def clutter_sources() -> Tuple[np.ndarray, ...]:
    """(h, w, 3) uint8 photographs pasted as background clutter."""
    data = skimage.data
    astronaut = data.astronaut()
    return (astronaut[:300, :120], astronaut[:250, 350:], astronaut[350:,
                                                                      300:],
            data.logo()[..., :3], data.colorwheel(),
            _grey_to_rgb(data.page()), data.retina()[200:1200, 200:1200],
            _grey_to_rgb(data.clock()), _grey_to_rgb(data.text()))


def _resize(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of an (h, w, 3) uint8 image or an (h, w) bool mask."""
    if array.dtype == bool:
        return np.asarray(Image.fromarray(array.astype(np.uint8) * 255).resize(
            (width, height), Image.BILINEAR)) > 127
    return np.asarray(Image.fromarray(array).resize((width, height),
                                                    Image.BILINEAR))


def _random_crop(rng: np.random.Generator, source: np.ndarray, height: int,
                 width: int, zoom: Tuple[float, float]) -> np.ndarray:
    """A (height, width, 3) crop of ``source`` at a random scale."""
    scale = rng.uniform(*zoom) * max(height / source.shape[0],
                                     width / source.shape[1])
    crop_h = min(source.shape[0], max(8, int(round(height / scale))))
    crop_w = min(source.shape[1], max(8, int(round(width / scale))))
    top = rng.integers(0, source.shape[0] - crop_h + 1)
    left = rng.integers(0, source.shape[1] - crop_w + 1)
    return _resize(source[top:top + crop_h, left:left + crop_w], height,
                   width)


def _jitter(rng: np.random.Generator, rgb: np.ndarray,
            strength: float) -> np.ndarray:
    """Brightness, contrast and per-channel gain, each within strength."""
    image = rgb.astype(np.float32)
    mean = image.mean()
    contrast = rng.uniform(1 - strength, 1 + strength)
    gain = rng.uniform(1 - strength, 1 + strength, size=3)
    brightness = rng.uniform(1 - strength, 1 + strength)
    image = ((image - mean) * contrast + mean) * gain * brightness
    return np.clip(image, 0, 255).astype(np.uint8)


def _paste(image: np.ndarray, label: Optional[np.ndarray], rgb: np.ndarray,
           mask: np.ndarray, top: int, left: int, value: int) -> None:
    """Paste ``rgb`` where ``mask`` at (top, left), clipped to the image;
    write ``value`` into ``label`` there (unless label is None)."""
    height, width = image.shape[:2]
    y0, x0 = max(top, 0), max(left, 0)
    y1 = min(top + mask.shape[0], height)
    x1 = min(left + mask.shape[1], width)
    if y0 >= y1 or x0 >= x1:
        return
    window = np.s_[y0 - top:y1 - top, x0 - left:x1 - left]
    region = mask[window]
    # A one-pixel soft edge, as a photograph's, over a hard label.
    alpha = ndi.uniform_filter(region.astype(np.float32), 3)[..., None]
    target = image[y0:y1, x0:x1].astype(np.float32)
    image[y0:y1, x0:x1] = (alpha * rgb[window] + (1 - alpha) *
                           target).astype(np.uint8)
    if label is not None:
        label[y0:y1, x0:x1][region] = value


def _background(rng: np.random.Generator, height: int,
                width: int) -> np.ndarray:
    sources = background_sources()
    image = _random_crop(rng, sources[rng.integers(len(sources))], height,
                         width, (1.0, 2.5))
    image = _jitter(rng, image, 0.3)
    for _ in range(rng.integers(0, 3)):
        clutter = clutter_sources()
        size = int(rng.uniform(0.2, 0.5) * min(height, width))
        patch = _random_crop(rng, clutter[rng.integers(len(clutter))], size,
                             size, (1.0, 3.0))
        shape = (np.ones((size, size), bool) if rng.random() < 0.5 else
                 _ellipse(size, size, 0.5, 0.5, 0.5, 0.5))
        _paste(image, None, patch, shape, rng.integers(-size // 3, height),
               rng.integers(-size // 3, width), 0)
    return image


def render_photo_image(rng: np.random.Generator, height: int, width: int,
                       max_objects: int = 4) -> Tuple[np.ndarray, np.ndarray]:
    """One composited photograph and its mask.

    Returns:
        tuple: (H, W, 3) uint8 RGB image and (H, W) uint8 mask (0 =
        background, c = ``CLASSES[c]``).
    """
    image = _background(rng, height, width)
    label = np.zeros((height, width), np.uint8)
    sprites = object_sprites()
    names = CLASSES[1:]
    num_classes = rng.integers(1, min(max_objects, 2) + 1)
    chosen = rng.choice(len(names), size=num_classes, replace=False)
    placements: List[Tuple[int, Sprite, float]] = []
    for index in chosen:
        name = names[index]
        spec = CLASS_SPECS[name]
        for _ in range(rng.integers(1, spec.max_instances + 1)):
            options = sprites[name]
            placements.append((int(index) + 1,
                               options[rng.integers(len(options))],
                               rng.uniform(*spec.size)))
    # Large objects first, so that small ones are not hidden whole.
    placements.sort(key=lambda placement: -placement[2])
    for value, sprite, size in placements[:max_objects]:
        scale = size * min(height, width) / max(sprite.mask.shape)
        obj_h = max(6, int(round(sprite.mask.shape[0] * scale)))
        obj_w = max(6, int(round(sprite.mask.shape[1] * scale)))
        rgb, mask = _resize(sprite.rgb, obj_h, obj_w), _resize(
            sprite.mask, obj_h, obj_w)
        if rng.random() < 0.5:
            rgb, mask = rgb[:, ::-1], mask[:, ::-1]
        rgb = _jitter(rng, rgb, 0.15)
        # Up to a quarter of the object may fall outside the image.
        top = rng.integers(-obj_h // 4, max(height - 3 * obj_h // 4, 0) + 1)
        left = rng.integers(-obj_w // 4, max(width - 3 * obj_w // 4, 0) + 1)
        _paste(image, label, rgb, mask, int(top), int(left), value)
    noise = rng.normal(0, 3, size=image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8), label


def _write_photo_demo(out_dir: str, params: dict) -> None:
    """Every file of the set into the (new) ``out_dir``."""
    rng = np.random.default_rng(params['seed'])
    palette = voc_palette(len(CLASSES))
    os.makedirs(osp.join(out_dir, 'JPEGImages'))
    for split in ('train', 'val'):
        ids = [f'{split}_{i:04d}' for i in range(params[f'num_{split}'])]
        for img_id in ids:
            height, width = rng.integers(params['min_size'],
                                         params['max_size'] + 1, size=2)
            image, label = render_photo_image(rng, int(height), int(width),
                                              params['max_objects'])
            Image.fromarray(image).save(
                osp.join(out_dir, 'JPEGImages', img_id + '.jpg'), quality=92)
            write_label(
                osp.join(out_dir, 'SegmentationClass', img_id + '.png'),
                label, palette)
        atomic_write_bytes(
            osp.join(out_dir, 'ImageSets', 'Segmentation', f'{split}.txt'),
            ''.join(i + '\n' for i in ids).encode())
    atomic_write_bytes(osp.join(out_dir, 'classes.txt'),
                       ''.join(name + '\n' for name in CLASSES).encode())


def make_photo_demo(out_dir: str,
                    num_train: int = 400,
                    num_val: int = 100,
                    min_size: int = 144,
                    max_size: int = 224,
                    max_objects: int = 4,
                    seed: int = 0) -> str:
    """Generate the photo demo set into ``out_dir`` (must not exist).

    Deterministic: the same arguments give byte-identical files on any
    machine with the same scikit-image photographs. Written into a temp
    folder and renamed into place (:func:`.generated.generate_once`).

    Args:
        num_train, num_val (int): Images per split (``train_0000`` ...).
        min_size, max_size (int): Height and width, each uniform in range.
        max_objects (int): At most this many objects per image, of one or
            two classes (faces and coins may come several times).
        seed (int): Seed of the numpy Generator.

    Returns:
        str: ``out_dir``.
    """
    if not 32 <= min_size <= max_size:
        raise ValueError(f'need 32 <= min_size <= max_size, got {min_size}, '
                         f'{max_size}')
    if num_train < 1 or num_val < 0 or max_objects < 1:
        raise ValueError('need num_train >= 1, num_val >= 0 and max_objects '
                         f'>= 1, got {num_train}, {num_val}, {max_objects}')
    params = dict(num_train=num_train, num_val=num_val, min_size=min_size,
                  max_size=max_size, max_objects=max_objects, seed=seed)
    return generate_once(out_dir, _write_photo_demo, params, PARAMS_FILE)


@DATASETS.register_module()
class PhotoDemoDataset(VOCLayoutDataset):
    """The photo demo set, generated into ``data_root`` on first use.

    Args:
        generator_cfg (dict, optional): Arguments of :func:`make_photo_demo`.
        **kwargs: :class:`VOCLayoutDataset` arguments (no tags file: tags
            come from the masks).
    """

    def __init__(self,
                 data_root: str = 'data/photo_demo',
                 generator_cfg: Optional[Dict] = None,
                 **kwargs) -> None:
        ensure_generated(data_root, make_photo_demo, generator_cfg,
                         PARAMS_FILE)
        super().__init__(data_root=data_root, **kwargs)
