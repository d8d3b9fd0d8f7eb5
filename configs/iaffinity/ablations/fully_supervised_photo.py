# Fully supervised reference on the photo demo: the EM loop's final unary
# net (same model, optimiser, schedule and batch size) trained on the
# ground-truth masks of the training images, then evaluated on val: the
# ceiling of the weakly supervised run (docs/ablations.md).
#   python tools/train.py configs/iaffinity/ablations/fully_supervised_photo.py
_base_ = ['../photo_demo.py']

train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(pipeline=_base_.train_cfg.unary.pipeline))
optim_wrapper = dict(_base_.train_cfg.unary.optim_wrapper, _delete_=True)
param_scheduler = _base_.train_cfg.final_unary.param_scheduler
train_cfg = dict(
    _base_.train_cfg.final_unary.train_cfg,
    _delete_=True,
    val_interval=_base_.train_cfg.final_unary.train_cfg.max_iters)
custom_hooks = [dict(type='ValReportHook')]
runner_type = 'Runner'
