"""Plugin manager: extension points that third-party packages can fill.

A plugin is any module or object with functions marked ``@hookimpl`` whose
names match the hookspecs below. Our own implementations are registered from
the modules in :data:`BUILTIN_PLUGIN_MODULES`; other packages add theirs
through the ``iaffinity`` entry-point group, e.g. in their pyproject.toml::

    [project.entry-points.iaffinity]
    my_plugin = "my_package.iaffinity_plugin"

Each hook returns a mapping ``name -> implementation``; configs then select an
implementation by name (``superpixels=dict(method='slic', ...)``) and
:func:`get_extension` looks it up. Refiners and data formats are classes: they
are registered into mmseg's ``MODELS`` / ``DATASETS`` by
:func:`register_extension_classes`, so configs build them by ``type``.
"""
import importlib
from functools import lru_cache
from typing import Any, Callable, Dict

import pluggy

PROJECT_NAME = 'iaffinity'
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

BUILTIN_PLUGIN_MODULES = (
    'iaffinity_plugins.labels.superpixels',
    'iaffinity_plugins.labels.seeds',
    'iaffinity_plugins.labels.mining',
)


class IAffinitySpec:
    """Hook specifications: each returns ``{name: implementation}``."""

    @hookspec
    def iaffinity_seed_generators(self) -> Dict[str, Callable]:
        """Seed rules ``(cams (K-1, H, W), tags (K-1,), **cfg) -> (H, W) uint8``."""

    @hookspec
    def iaffinity_superpixel_methods(self) -> Dict[str, Callable]:
        """Superpixel methods ``(image (H, W, 3) uint8, **cfg) -> (H, W) int``."""

    @hookspec
    def iaffinity_miners(self) -> Dict[str, Callable]:
        """Region proposal rules ``(labels (H, W), superpixels (H, W), **cfg)
        -> (H, W) uint8`` used before the confidence filter."""

    @hookspec
    def iaffinity_refiners(self) -> Dict[str, type]:
        """Pairwise refiner model classes, registered into ``MODELS``."""

    @hookspec
    def iaffinity_dataset_formats(self) -> Dict[str, type]:
        """Data set classes, registered into ``DATASETS``."""


EXTENSION_HOOKS = {
    'seed_generator': 'iaffinity_seed_generators',
    'superpixel_method': 'iaffinity_superpixel_methods',
    'miner': 'iaffinity_miners',
    'refiner': 'iaffinity_refiners',
    'dataset_format': 'iaffinity_dataset_formats',
}


@lru_cache(maxsize=1)
def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager with built-in and installed plugins."""
    manager = pluggy.PluginManager(PROJECT_NAME)
    manager.add_hookspecs(IAffinitySpec)
    for module_name in BUILTIN_PLUGIN_MODULES:
        manager.register(importlib.import_module(module_name), module_name)
    manager.load_setuptools_entrypoints(PROJECT_NAME)
    return manager


def available_extensions(kind: str) -> Dict[str, Any]:
    """All implementations of one extension kind, later plugins winning.

    Args:
        kind (str): One of :data:`EXTENSION_HOOKS`' keys.
    """
    if kind not in EXTENSION_HOOKS:
        raise KeyError(f'unknown extension kind {kind!r}; '
                       f'known: {sorted(EXTENSION_HOOKS)}')
    hook = getattr(get_plugin_manager().hook, EXTENSION_HOOKS[kind])
    found: Dict[str, Any] = {}
    # pluggy calls the most recently registered plugin first: reverse so
    # that an installed plugin can override a built-in name.
    for mapping in reversed(hook()):
        found.update(mapping or {})
    return found


def get_extension(kind: str, name: str) -> Any:
    """The implementation called ``name`` of extension ``kind``.

    Raises:
        KeyError: naming the unknown ``name`` and the available ones.
    """
    found = available_extensions(kind)
    if name not in found:
        raise KeyError(f'no {kind} named {name!r}; available: {sorted(found)}')
    return found[name]


def register_extension_classes() -> None:
    """Put plugin refiners into ``MODELS`` and data formats into ``DATASETS``."""
    from .registry import DATASETS, MODELS
    for kind, registry in (('refiner', MODELS), ('dataset_format', DATASETS)):
        for name, cls in available_extensions(kind).items():
            if registry.get(name) is not cls:
                registry.register_module(name=name, module=cls, force=True)
