"""The compat layer: mmseg imports on mmcv-lite, checkpoints resume safely."""
import pickle
import sys

import pytest
import torch
from mmengine.runner import Runner

import iaffinity_plugins.compat as compat


def test_mmcv_ext_stub_names_the_missing_op():
    ext = sys.modules[compat.EXT_NAME]
    assert ext.__spec__ is not None and ext.__spec__.name == 'mmcv._ext'
    with pytest.raises(compat.MissingMMCVOpError, match="'nms'"):
        ext.nms()


def test_stub_is_not_installed_twice():
    assert compat.install_mmcv_ext_stub() is False


def test_mmseg_models_import():
    import mmseg.models  # noqa: F401
    from mmseg.registry import MODELS
    assert MODELS.get('EncoderDecoder') is not None


class _RandomSegDataset(torch.utils.data.Dataset):
    """Eight 32x32 images whose label is 'pixel brighter than 128'."""

    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> dict:
        from mmengine.structures import PixelData
        from mmseg.structures import SegDataSample
        generator = torch.Generator().manual_seed(index)
        image = torch.randint(0, 256, (3, 32, 32), generator=generator,
                              dtype=torch.uint8)
        sample = SegDataSample(metainfo=dict(
            img_shape=(32, 32), ori_shape=(32, 32), pad_shape=(32, 32)))
        label = (image[0] > 128).long()[None]
        sample.gt_sem_seg = PixelData(data=label)
        return dict(inputs=image, data_samples=sample)


def _tiny_runner_cfg(work_dir: str, resume: bool) -> dict:
    model = dict(
        type='EncoderDecoder',
        data_preprocessor=dict(type='SegDataPreProcessor', mean=[128] * 3,
                               std=[64] * 3, size=(32, 32)),
        backbone=dict(type='ResNetV1c', depth=18, stem_channels=8,
                      base_channels=8, out_indices=(3, )),
        decode_head=dict(type='FCNHead', in_channels=64, channels=8,
                         num_convs=1, num_classes=2, in_index=0,
                         loss_decode=dict(type='CrossEntropyLoss',
                                          loss_weight=1.0)))
    return dict(
        model=model, work_dir=work_dir, default_scope='mmseg',
        train_dataloader=dict(dataset=_RandomSegDataset(), batch_size=2,
                              sampler=dict(type='DefaultSampler',
                                           shuffle=True)),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01,
                                          momentum=0.9)),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=6),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=3,
                                           by_epoch=False),
                           logger=dict(type='LoggerHook', interval=1)),
        resume=resume, experiment_name=f'compat_{resume}')


def test_encoder_decoder_trains_saves_and_resumes(tmp_path):
    work_dir = str(tmp_path)
    cfg = _tiny_runner_cfg(work_dir, resume=False)
    cfg['train_cfg']['max_iters'] = 3
    Runner(**cfg).train()
    assert (tmp_path / 'iter_3.pth').exists()

    runner = Runner(**_tiny_runner_cfg(work_dir, resume=True))
    runner.train()
    # Resumed from iteration 3, not restarted: it ends at 6 and wrote iter_6.
    assert runner.iter == 6
    assert (tmp_path / 'iter_6.pth').exists()
    checkpoint = torch.load(tmp_path / 'iter_6.pth', weights_only=True)
    assert checkpoint['meta']['iter'] == 6


class _Arbitrary:
    """Not in any allow-list: a checkpoint holding it must be refused."""


def test_arbitrary_pickled_object_is_refused(tmp_path):
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'payload': _Arbitrary()}, path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)


class _SneakyGetattr:
    """Pickles as ``getattr(HistoryBuffer, '__init__')``: not a statistic."""

    def __reduce__(self):
        from mmengine.logging import HistoryBuffer
        return getattr, (HistoryBuffer, '__init__')


def test_getattr_is_limited_to_history_buffer_statistics(tmp_path):
    from mmengine.logging import HistoryBuffer
    buffer = HistoryBuffer()
    buffer.update(2.0)
    torch.save({'buffer': buffer}, tmp_path / 'ok.pth')
    loaded = torch.load(tmp_path / 'ok.pth', weights_only=True)
    assert loaded['buffer'].mean() == 2.0

    torch.save({'payload': _SneakyGetattr()}, tmp_path / 'sneaky.pth')
    with pytest.raises(pickle.UnpicklingError, match='__init__'):
        torch.load(tmp_path / 'sneaky.pth', weights_only=True)
