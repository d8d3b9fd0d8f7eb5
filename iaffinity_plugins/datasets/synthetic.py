"""A procedural synthetic WSSS data set in VOC layout, for demos and tests.

Each foreground class is a (shape, texture) pair: striped discs,
checkered squares, dotted triangles, blotchy rings, ramped crosses, ...
Colours are random per object, so colour never identifies a class.
Backgrounds are cluttered: a colour gradient, low-frequency noise and plain,
low-contrast distractor blobs (no texture, unlike objects).

What makes it a weak-supervision problem: an object carries its class
texture only in a *core* around a random point; the rest of the object is
plain in its base colour. A classifier (and so its CAM) finds the class in
the core, which covers roughly a quarter to a half of the object, while the
plain remainder can only be recovered from colour continuity and edges, the
cue the paper's pairwise affinity and superpixels exploit. Objects span 30 %
to 60 % of the image side, 1 to ``max_objects`` per image, drawn in order so
later objects occlude earlier ones; tags are read from the final mask, so a
fully hidden object is not tagged.

Files (see :func:`make_synthetic_dataset`)::

    JPEGImages/<id>.jpg            RGB, JPEG quality 95 (VOC-like artefacts)
    SegmentationClass/<id>.png     palette masks, 0 = background, no 255
    ImageSets/Segmentation/{train,val}.txt
    classes.txt, tags.txt          class list, ``img_id class_a ...`` tags
    synthetic.json                 the generator arguments

Shapes: H x W image size; object coordinates (u, v) are (H, W) arrays in
which the object spans about [-1, 1] along both axes.
"""
import os
import os.path as osp
from typing import Callable, Dict, NamedTuple, Optional

import numpy as np
from PIL import Image
from skimage.transform import resize

from iaffinity_plugins.labels.label_io import (atomic_write_bytes, voc_palette,
                                               write_label)
from iaffinity_plugins.registry import DATASETS
from .generated import ensure_generated, generate_once
from .voc_layout import VOCLayoutDataset, tags_from_mask, write_tags_file

ShapeFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
TextureFn = Callable[[np.ndarray, np.ndarray, float], np.ndarray]
PARAMS_FILE = 'synthetic.json'


class ClassDef(NamedTuple):
    """One foreground class: a shape mask and a texture pattern."""
    name: str
    shape: ShapeFn  # (u, v) -> (H, W) bool
    texture: TextureFn  # (u, v, freq) -> (H, W) float in [0, 1]


def _polar(u: np.ndarray, v: np.ndarray):
    return np.hypot(u, v), np.arctan2(v, u)


def _star(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    r, theta = _polar(u, v)
    return r <= 0.65 + 0.35 * np.cos(5 * theta)


CLASS_DEFS = (
    ClassDef('striped_disc', lambda u, v: np.hypot(u, v) <= 1,
             lambda u, v, f: np.sin(np.pi * f * u) > 0),
    ClassDef('checkered_square',
             lambda u, v: np.maximum(abs(u), abs(v)) <= 0.85,
             lambda u, v, f: (np.floor(f * u) + np.floor(f * v)) % 2),
    ClassDef('dotted_triangle',
             lambda u, v: (v >= -0.6) & (v <= 1 - np.sqrt(3) * abs(u)),
             lambda u, v, f: np.hypot(
                 (f * u) % 1 - 0.5, (f * v) % 1 - 0.5) < 0.3),
    ClassDef('blotchy_ring',
             lambda u, v: (np.hypot(u, v) >= 0.5) & (np.hypot(u, v) <= 1),
             lambda u, v, f: np.sin(np.pi * f * u) * np.sin(
                 np.pi * f * 0.7 * v) + np.sin(np.pi * f * 1.3 * (u + v)) > 0),
    ClassDef('ramped_cross',
             lambda u, v: np.minimum(abs(u), abs(v)) <= 0.35,
             lambda u, v, f: (f * u) % 1),
    ClassDef('ringed_star', _star,
             lambda u, v, f: np.sin(np.pi * f * np.hypot(u, v)) > 0),
    ClassDef('gridded_hexagon',
             lambda u, v: np.maximum(abs(v), 0.87 * abs(u) + 0.5 * abs(v))
             <= 0.9,
             lambda u, v, f: np.minimum((f * u) % 1, (f * v) % 1) < 0.25),
    ClassDef('wavy_crescent',
             lambda u, v: (np.hypot(u, v) <= 1) & (np.hypot(u - 0.5, v) > 0.8),
             lambda u, v, f: np.sin(np.pi * f * u + 2 * np.sin(np.pi * f * v))
             > 0),
)


def _object_coords(height: int, width: int, center, radius: float,
                   aspect: float, angle: float):
    """(u, v) of every pixel in a rotated, anisotropically scaled frame."""
    y, x = np.mgrid[:height, :width].astype(np.float32)
    dx, dy = x - center[0], y - center[1]
    cos, sin = np.cos(angle), np.sin(angle)
    u = (cos * dx + sin * dy) / (radius * aspect)
    v = (-sin * dx + cos * dy) / (radius / aspect)
    return u, v


def _smooth_noise(rng: np.random.Generator, height: int, width: int,
                  channels: int, cells: int = 4) -> np.ndarray:
    """(H, W, channels) low-frequency noise in about [-1, 1]."""
    coarse = rng.uniform(-1, 1, size=(cells, cells, channels))
    # Bilinear: smooth enough at 4 cells, and 20x faster than bicubic.
    return resize(coarse, (height, width, channels), order=1, mode='reflect')


def _background(rng: np.random.Generator, height: int,
                width: int) -> np.ndarray:
    """(H, W, 3) float: gradient + low-frequency noise + plain blobs."""
    y, x = np.mgrid[:height, :width].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(angle) * x / width + np.sin(angle) * y / height
    ramp = (ramp - ramp.min()) / max(np.ptp(ramp), 1e-6)
    start, end = rng.uniform(40, 215, size=(2, 3))
    image = start + ramp[..., None] * (end - start)
    image += 20 * _smooth_noise(rng, height, width, 3)
    for _ in range(rng.integers(2, 5)):
        # Distractors: irregular blobs, plain and low-contrast, so that
        # neither colour nor "a blob is there" identifies an object.
        radius = rng.uniform(0.08, 0.2) * min(height, width)
        u, v = _object_coords(height, width,
                              rng.uniform(0, 1, 2) * (width, height), radius,
                              np.exp(rng.uniform(-0.4, 0.4)),
                              rng.uniform(0, 2 * np.pi))
        r, theta = _polar(u, v)
        blob = r <= 1 + 0.25 * np.sin(3 * theta + rng.uniform(0, 2 * np.pi))
        image[blob] += rng.choice([-1, 1]) * rng.uniform(20, 45, size=3)
    return image


def _contrasting_colour(rng: np.random.Generator,
                        colour: np.ndarray,
                        min_distance: float = 100) -> np.ndarray:
    """A random RGB colour at least ``min_distance`` away from ``colour``."""
    while True:
        other = rng.uniform(0, 255, size=3)
        if np.linalg.norm(other - colour) >= min_distance:
            return other


def _draw_object(rng: np.random.Generator, image: np.ndarray,
                 label: np.ndarray, class_index: int,
                 core_radius: float) -> None:
    """Paint one object of ``CLASS_DEFS[class_index - 1]`` in place."""
    height, width = label.shape
    class_def = CLASS_DEFS[class_index - 1]
    radius = rng.uniform(0.15, 0.3) * min(height, width)
    center = rng.uniform(0.2, 0.8, size=2) * (width, height)
    u, v = _object_coords(height, width, center, radius,
                          np.exp(rng.uniform(-0.3, 0.3)),
                          rng.uniform(0, 2 * np.pi))
    # Shapes are defined on the unit square (e.g. the cross's arms end there).
    inside = class_def.shape(u, v) & (np.maximum(abs(u), abs(v)) <= 1)
    # Texture strength: 1 in a core around a random point, fading to 0 (the
    # plain base colour) over 0.3 radii; see the module docstring.
    core_center = rng.uniform(-0.4, 0.4, size=2)
    core_dist = np.hypot(u - core_center[0], v - core_center[1])
    core = rng.uniform(core_radius - 0.2, core_radius + 0.2)
    strength = np.clip((core - core_dist) / 0.3, 0, 1)
    pattern = class_def.texture(u, v, rng.uniform(2.5, 4.0)).astype(float)
    base = rng.uniform(30, 225, size=3)
    accent = _contrasting_colour(rng, base)
    colour = base + (strength * pattern)[..., None] * (accent - base)
    image[inside] = colour[inside]
    label[inside] = class_index


def render_synthetic_image(rng: np.random.Generator,
                           height: int,
                           width: int,
                           num_classes: int,
                           max_objects: int,
                           core_radius: float = 0.75):
    """One image and its mask.

    ``core_radius`` (in object radii, jittered by +-0.2 per object) sets the
    textured core; about 2.5 or more textures whole objects (an easy set).

    Returns:
        tuple: (H, W, 3) uint8 image, (H, W) uint8 mask with values in
        0..num_classes.
    """
    image = _background(rng, height, width)
    label = np.zeros((height, width), dtype=np.uint8)
    for _ in range(rng.integers(1, max_objects + 1)):
        _draw_object(rng, image, label, int(rng.integers(1, num_classes + 1)),
                     core_radius)
    # Sensor noise everywhere, so plain regions are not perfectly flat.
    image += rng.normal(0, 4, size=image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), label


def _check_args(num_train: int, num_val: int, min_size: int, max_size: int,
                num_classes: int, max_objects: int,
                core_radius: float) -> None:
    if not 1 <= num_classes <= len(CLASS_DEFS):
        raise ValueError(f'num_classes (foreground) must be in 1..'
                         f'{len(CLASS_DEFS)}, got {num_classes}')
    if not 16 <= min_size <= max_size:
        raise ValueError('need 16 <= min_size <= max_size, got '
                         f'{min_size}, {max_size}')
    if core_radius <= 0.2:
        raise ValueError(f'core_radius must be > 0.2 (its jitter), got '
                         f'{core_radius}')
    if num_train < 0 or num_val < 0 or max_objects < 1:
        raise ValueError('need num_train, num_val >= 0 and max_objects >= 1, '
                         f'got {num_train}, {num_val}, {max_objects}')


def _write_dataset(out_dir: str, params: dict) -> None:
    """Generate every file of the data set into the (new) ``out_dir``."""
    rng = np.random.default_rng(params['seed'])
    num_classes = params['num_classes']
    classes = ('background', ) + tuple(
        c.name for c in CLASS_DEFS[:num_classes])
    palette = voc_palette(num_classes + 1)
    tags = {}
    for split in ('train', 'val'):
        ids = [f'{split}_{i:05d}' for i in range(params[f'num_{split}'])]
        for img_id in ids:
            height, width = rng.integers(
                params['min_size'], params['max_size'] + 1, size=2)
            image, label = render_synthetic_image(rng, int(height),
                                                  int(width), num_classes,
                                                  params['max_objects'],
                                                  params['core_radius'])
            os.makedirs(osp.join(out_dir, 'JPEGImages'), exist_ok=True)
            Image.fromarray(image).save(
                osp.join(out_dir, 'JPEGImages', img_id + '.jpg'), quality=95)
            write_label(
                osp.join(out_dir, 'SegmentationClass', img_id + '.png'),
                label, palette)
            tags[img_id] = tags_from_mask(label, num_classes + 1)
        atomic_write_bytes(
            osp.join(out_dir, 'ImageSets', 'Segmentation', f'{split}.txt'),
            ''.join(i + '\n' for i in ids).encode())
    atomic_write_bytes(
        osp.join(out_dir, 'classes.txt'),
        ''.join(name + '\n' for name in classes).encode())
    write_tags_file(osp.join(out_dir, 'tags.txt'), tags, classes)


def make_synthetic_dataset(out_dir: str,
                           num_train: int = 200,
                           num_val: int = 50,
                           min_size: int = 96,
                           max_size: int = 128,
                           num_classes: int = 5,
                           max_objects: int = 3,
                           core_radius: float = 0.75,
                           seed: int = 0) -> str:
    """Generate the synthetic data set into ``out_dir`` (must not exist).

    Deterministic: the same arguments give byte-identical files. The set is
    generated into a temp folder beside ``out_dir`` and renamed into place,
    so concurrent callers never see a partial folder: exactly one rename
    wins, the others get :class:`FileExistsError`.

    Args:
        num_train, num_val (int): Images per split (ids ``train_00000``...).
        min_size, max_size (int): Height and width, each uniform in range.
        num_classes (int): Foreground classes, at most ``len(CLASS_DEFS)``.
        max_objects (int): Objects per image are uniform in 1..max_objects.
        core_radius (float): Size of the textured core of each object, in
            object radii (see :func:`render_synthetic_image`): the lower,
            the harder for CAMs.
        seed (int): Seed of the numpy Generator.

    Returns:
        str: ``out_dir``.
    """
    _check_args(num_train, num_val, min_size, max_size, num_classes,
                max_objects, core_radius)
    params = dict(num_train=num_train, num_val=num_val, min_size=min_size,
                  max_size=max_size, num_classes=num_classes,
                  max_objects=max_objects, core_radius=core_radius,
                  seed=seed)
    return generate_once(out_dir, _write_dataset, params, PARAMS_FILE)


def ensure_synthetic_dataset(data_root: str,
                             generator_cfg: Optional[Dict] = None) -> None:
    """Generate ``data_root`` if missing; else check it matches the request.

    Raises:
        ValueError: ``data_root`` was generated with other arguments than
            ``generator_cfg`` asks for (naming its ``synthetic.json``).
    """
    ensure_generated(data_root, make_synthetic_dataset, generator_cfg,
                     PARAMS_FILE)


@DATASETS.register_module()
class SyntheticWSSSDataset(VOCLayoutDataset):
    """The synthetic set, generated into ``data_root`` on first use.

    Args:
        generator_cfg (dict, optional): Arguments of
            :func:`make_synthetic_dataset` (sizes, counts, classes, seed).
        **kwargs: :class:`VOCLayoutDataset` arguments.
    """

    def __init__(self,
                 data_root: str = 'data/synthetic',
                 generator_cfg: Optional[Dict] = None,
                 tags_file: Optional[str] = 'tags.txt',
                 **kwargs) -> None:
        ensure_synthetic_dataset(data_root, generator_cfg)
        super().__init__(data_root=data_root, tags_file=tags_file, **kwargs)
