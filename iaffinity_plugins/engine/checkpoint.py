"""Strict, safe loading of a stage's weights into a model.

Checkpoints load with ``weights_only=True`` (mmengine's loader on torch >= 2.6,
with the allow-list of :mod:`iaffinity_plugins.compat`); a checkpoint that
does not match the model is refused with the keys that differ.
"""
import copy
import os.path as osp
from typing import Union

import torch
from mmengine.runner.checkpoint import _load_checkpoint

from ..registry import MODELS

SHOWN_KEYS = 5


def load_checkpoint_strict(model: torch.nn.Module, checkpoint: str) -> None:
    """Load ``checkpoint`` into ``model``, requiring an exact key/shape match.

    Raises:
        FileNotFoundError: naming the missing checkpoint.
        RuntimeError: naming the checkpoint and the first missing,
            unexpected and shape-mismatched keys.
    """
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {checkpoint}')
    state = _load_checkpoint(checkpoint, map_location='cpu', logger='current')
    state = state.get('state_dict', state)
    # Weights saved from a DDP-wrapped model carry a 'module.' prefix.
    state = {key.removeprefix('module.'): value
             for key, value in state.items()}
    expected = model.state_dict()
    problems = {
        'missing': sorted(set(expected) - set(state)),
        'unexpected': sorted(set(state) - set(expected)),
        'shape-mismatched': sorted(
            key for key in set(state) & set(expected)
            if state[key].shape != expected[key].shape),
    }
    found = {kind: keys for kind, keys in problems.items() if keys}
    if found:
        details = '; '.join(
            f'{len(keys)} {kind} keys, first: {keys[:SHOWN_KEYS]}'
            for kind, keys in found.items())
        raise RuntimeError(f'checkpoint {checkpoint} does not match the '
                           f'config\'s model: {details}')
    model.load_state_dict(state, strict=True)


def load_model(model_cfg: dict, weights: str,
               device: Union[str, torch.device]) -> torch.nn.Module:
    """Build a model from its config (not changed) and load a stage's final
    weights strictly (:func:`load_checkpoint_strict`).

    Returns:
        torch.nn.Module: The model on ``device``, in eval mode.
    """
    model = MODELS.build(copy.deepcopy(model_cfg))
    load_checkpoint_strict(model, weights)
    return model.to(device).eval()
