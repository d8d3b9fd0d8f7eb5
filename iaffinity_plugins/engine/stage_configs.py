"""The stage configs the EM loop derives from its ``train_cfg``.

The loop (``engine/em_loop.py``) and the benchmark tools that retrain one of
its stages (``tools/benchmarks/``) build them with these functions, so a
retrained stage gets the very config the loop trained: the same dict, the
same config hash.
"""
import copy
import os.path as osp
from typing import Optional

from ..labels.superpixels import SuperpixelCache
from .stage_runner import set_transform_options, stage_pipeline

# The loop's superpixel method when ``train_cfg.superpixels`` names none.
DEFAULT_SUPERPIXEL_METHOD = 'felzenszwalb'


def superpixel_options(superpixels: Optional[dict]) -> dict:
    """``train_cfg.superpixels`` with the default ``method`` filled in."""
    return {'method': DEFAULT_SUPERPIXEL_METHOD, **(superpixels or {})}


def superpixel_cache_dir(work_dir: str) -> str:
    """The run's superpixel cache, ``<work_dir>/superpixels``."""
    return osp.join(work_dir, 'superpixels')


def run_superpixel_cache(work_dir: str,
                         superpixels: Optional[dict]) -> SuperpixelCache:
    """The run's superpixel cache as the loop reads it.

    Args:
        work_dir (str): The run's work dir.
        superpixels (dict, optional): ``train_cfg.superpixels``.

    Returns:
        SuperpixelCache: The cache under ``<work_dir>/superpixels`` with the
        default method filled in: the folder the ``LoadSuperpixels`` of
        :func:`set_superpixels` reads.
    """
    return SuperpixelCache(superpixel_cache_dir(work_dir),
                           **superpixel_options(superpixels))


def set_superpixels(stage_cfg: dict, work_dir: str,
                    superpixels: Optional[dict]) -> None:
    """Point the stage's ``LoadSuperpixels`` at the run's cache (in place).

    Args:
        stage_cfg (dict): A stage config (either pipeline form).
        work_dir (str): The run's work dir.
        superpixels (dict, optional): ``train_cfg.superpixels``.
    """
    set_transform_options(stage_pipeline(stage_cfg), 'LoadSuperpixels',
                          cache_dir=superpixel_cache_dir(work_dir),
                          **superpixel_options(superpixels))


def pairwise_stage_cfg(loop_pairwise_cfg: Optional[dict],
                       unary_model_cfg: dict, unary_weights: str,
                       work_dir: str,
                       superpixels: Optional[dict]) -> Optional[dict]:
    """The pairwise net g_t's stage config, holding the trained f_t.

    Args:
        loop_pairwise_cfg (dict, optional): ``train_cfg.pairwise`` (not
            changed); None: the run has no pairwise net.
        unary_model_cfg (dict): ``train_cfg.unary.model``, f_t's model.
        unary_weights (str): f_t's final weights.
        work_dir (str): The run's work dir (its superpixel cache).
        superpixels (dict, optional): ``train_cfg.superpixels``.

    Returns:
        dict or None: A copy of ``loop_pairwise_cfg`` with ``model.unary``
        and ``model.unary_checkpoint`` filled in and ``LoadSuperpixels``
        reading the run's cache; None without a pairwise net.
    """
    if loop_pairwise_cfg is None:
        return None
    cfg = copy.deepcopy(loop_pairwise_cfg)
    cfg['model']['unary'] = copy.deepcopy(unary_model_cfg)
    cfg['model']['unary_checkpoint'] = unary_weights
    set_superpixels(cfg, work_dir, superpixels)
    return cfg
