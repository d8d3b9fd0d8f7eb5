# Fully supervised reference: the EM loop's unary net (same model,
# optimiser, schedule and batch size) trained on the ground-truth masks of
# train_aug (SegmentationClassAug) by mmengine's ordinary
# IterBasedTrainLoop, then evaluated on val. Its val mIoU is written to
# report.json ("final") for tools/compare_runs.py --full-reference.
#   python tools/train.py configs/iaffinity/ablations/fully_supervised_vgg16_voc.py
_base_ = ['../deeplab_vgg16_voc.py']

# model: the base's unary net, unchanged; the loop's unary stage settings
# (the VOC config has no final_unary override).
train_dataloader = dict(
    batch_size=_base_.train_cfg.unary.batch_size,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(pipeline=_base_.train_cfg.unary.pipeline))
optim_wrapper = dict(_base_.train_cfg.unary.optim_wrapper, _delete_=True)
param_scheduler = _base_.train_cfg.unary.param_scheduler
train_cfg = dict(
    _base_.train_cfg.unary.train_cfg,
    _delete_=True,
    val_interval=_base_.train_cfg.unary.train_cfg.max_iters)
custom_hooks = [dict(type='ValReportHook')]
# A plain mmseg training: mmengine's usual console output.
runner_type = 'Runner'
