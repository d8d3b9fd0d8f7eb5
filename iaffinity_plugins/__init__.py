"""iaffinity: Weakly-Supervised Semantic Segmentation by Iterative Affinity
Learning (Wang, Liu, Ma, Yang, IJCV 2020) as OpenMMLab plugins.

Importing this package (``custom_imports=dict(imports=['iaffinity_plugins'])``)
registers every dataset, transform, model, loop, hook and metric.
"""
from . import compat  # noqa: F401  (must run before mmseg is imported)
from . import datasets, engine, evaluation, models, transforms  # noqa: F401
from .plugins import get_plugin_manager

__version__ = '0.1.0'
__all__ = ['get_plugin_manager', '__version__']
