"""The OpenMMLab registries iaffinity registers into.

Everything lives in mmseg's registries (children of mmengine's root ones), so
configs that use ``default_scope='mmseg'`` find our modules next to mmseg's.
"""
from mmseg.registry import (DATASETS, HOOKS, LOOPS, METRICS, MODELS, RUNNERS,
                            TRANSFORMS)

__all__ = ['DATASETS', 'HOOKS', 'LOOPS', 'METRICS', 'MODELS', 'RUNNERS',
           'TRANSFORMS']
