# Fully supervised reference: the EM loop's final unary net (same model,
# optimiser, schedule and batch size) trained on the ground-truth masks of
# the training images by mmengine's ordinary IterBasedTrainLoop, then
# evaluated on val. Its val mIoU is written to report.json ("final") for
# tools/compare_runs.py --full-reference. No CAM, seeds or EM stages.
#   python tools/train.py configs/iaffinity/ablations/fully_supervised_synthetic.py
_base_ = ['../synthetic_demo.py']

# model: the base's unary net, unchanged. The training images read their
# ground-truth masks (no label_dir), with the unary stage's pipeline and the
# stages' default batch size (engine/stage_runner.py).
train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(pipeline=_base_.train_cfg.unary.pipeline))
# The unary stage's optimiser with the loop's final_unary schedule.
optim_wrapper = dict(_base_.train_cfg.unary.optim_wrapper, _delete_=True)
param_scheduler = _base_.train_cfg.final_unary.param_scheduler
train_cfg = dict(
    _base_.train_cfg.final_unary.train_cfg,
    _delete_=True,
    val_interval=_base_.train_cfg.final_unary.train_cfg.max_iters)
custom_hooks = [dict(type='ValReportHook')]
# A plain mmseg training: mmengine's usual console output.
runner_type = 'Runner'
