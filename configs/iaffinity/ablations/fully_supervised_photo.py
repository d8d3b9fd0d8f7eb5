# Fully supervised reference on the photo demo: the EM loop's final unary
# net (same model, optimiser and batch size) trained from its ImageNet
# weights on the ground-truth masks of the training images, with the
# schedule a cold start needs (reference_schedule: the loop's final net
# starts from f_T and trains a shorter one), then evaluated on val: the
# ceiling of the weakly supervised run (docs/ablations.md).
#   python tools/train.py configs/iaffinity/ablations/fully_supervised_photo.py
_base_ = ['../photo_demo.py']

train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(pipeline=_base_.train_cfg.unary.pipeline))
optim_wrapper = dict(_base_.train_cfg.unary.optim_wrapper, _delete_=True)
param_scheduler = _base_.reference_schedule.param_scheduler
train_cfg = dict(
    _base_.reference_schedule.train_cfg,
    _delete_=True,
    val_interval=_base_.reference_schedule.train_cfg.max_iters)
custom_hooks = [dict(type='ValReportHook')]
runner_type = 'Runner'
