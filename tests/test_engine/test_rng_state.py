"""A stage killed mid-training and resumed ends with the weights of an
uninterrupted training, dropout included."""
import torch
from mmengine.model import BaseModel
from torch import nn
from torch.utils.data import Dataset

from iaffinity_plugins.engine.rng_state import CHECKPOINT_KEY
from iaffinity_plugins.engine.stage_runner import train_stage
from iaffinity_plugins.registry import DATASETS, MODELS


@MODELS.register_module(force=True)
class DropoutToyNet(BaseModel):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(8, 8)
        self.dropout = nn.Dropout(0.5)

    def forward(self, inputs, mode: str = 'tensor'):
        out = self.dropout(self.linear(torch.stack(inputs)))
        return dict(loss=out.pow(2).mean()) if mode == 'loss' else out


@DATASETS.register_module(force=True)
class ToyVectors(Dataset):
    def __len__(self) -> int:
        return 16

    def __getitem__(self, index: int) -> dict:
        return dict(inputs=torch.linspace(-1, 1, 8) * (index + 1))


STAGE = dict(
    model=dict(type='DropoutToyNet'),
    optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
    train_cfg=dict(type='IterBasedTrainLoop', max_iters=3),
    train_dataloader=dict(
        batch_size=2, num_workers=0,
        sampler=dict(type='InfiniteSampler', shuffle=True),
        dataset=dict(type='ToyVectors')))
RUNTIME = dict(default_scope='mmseg', randomness=dict(seed=0),
               default_hooks=dict(checkpoint=dict(
                   type='CheckpointHook', by_epoch=False, interval=1)))


def _train(work_dir, name: str) -> dict:
    path = train_stage(STAGE, RUNTIME, str(work_dir), f'toy/{name}')
    return torch.load(path, weights_only=True)['state_dict']


def _killed_after_iteration_1(work_dir) -> None:
    """What a kill right after the first checkpoint leaves on disk."""
    for name in ('iter_2.pth', 'iter_3.pth', 'final_weights.pth'):
        (work_dir / name).unlink()
    (work_dir / 'last_checkpoint').write_text(str(work_dir / 'iter_1.pth'))


def test_resumed_training_draws_the_same_dropout(tmp_path):
    uninterrupted = _train(tmp_path / 'once', 'once')
    _train(tmp_path / 'killed', 'killed')
    _killed_after_iteration_1(tmp_path / 'killed')
    resumed = _train(tmp_path / 'killed', 'resumed')
    assert all(torch.equal(resumed[key], value)
               for key, value in uninterrupted.items())

    # A checkpoint without the random state (written before the hook)
    # still resumes, with other dropout masks: what the hook fixes.
    _killed_after_iteration_1(tmp_path / 'killed')
    checkpoint = torch.load(tmp_path / 'killed' / 'iter_1.pth',
                            weights_only=False)
    del checkpoint[CHECKPOINT_KEY]
    torch.save(checkpoint, tmp_path / 'killed' / 'iter_1.pth')
    resumed = _train(tmp_path / 'killed', 'resumed_without_state')
    assert not torch.equal(resumed['linear.weight'],
                           uninterrupted['linear.weight'])
