"""The torch random state of a training across a kill and its resume.

mmengine's resume restores the weights, optimiser, schedulers and message
hub, and advances the dataloader past the trained iterations, which draws
the data pipeline's numpy/random numbers and the sampler's own generator
again in the same order. It does not restore the global torch generator
that dropout draws from: a resumed unary net or region classifier dropped
other units than an uninterrupted one and ended with other weights and
other labels (tests/test_engine/test_kill_resume_photo.py, killed in
step_1/unary: 10 of 56 label files differed).
"""
from typing import Optional

import torch
from mmengine.hooks import Hook

from ..registry import HOOKS

CHECKPOINT_KEY = 'torch_rng_state'


@HOOKS.register_module()
class TorchRNGStateHook(Hook):
    """Save the torch (and CUDA) generator states with every checkpoint and
    set them back before the first iteration of a resumed training.

    They are set back once the dataloader has been advanced and the next
    batch loaded, right before its forward pass, where an uninterrupted
    training reaches the same state: loading a batch from an
    ``InfiniteSampler`` draws nothing from the torch generator.

    Rank 0 writes the checkpoints, so every rank gets rank 0's states: the
    same as its own when ``randomness.diff_rank_seed`` is False (the
    default), since the ranks then draw alike.
    """

    priority = 'VERY_HIGH'

    def __init__(self) -> None:
        self._resumed: Optional[dict] = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint[CHECKPOINT_KEY] = dict(
            cpu=torch.get_rng_state(),
            cuda=torch.cuda.get_rng_state_all()
            if torch.cuda.is_available() else [])

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        # A checkpoint from before this hook has no states: nothing to set.
        self._resumed = checkpoint.get(CHECKPOINT_KEY)

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        if self._resumed is None:
            return
        torch.set_rng_state(self._resumed['cpu'].cpu())
        cuda = self._resumed['cuda']
        if cuda and len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([state.cpu() for state in cuda])
        self._resumed = None
