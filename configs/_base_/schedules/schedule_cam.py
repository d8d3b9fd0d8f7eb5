# CAM classifier (trained in PyTorch as Ahn and Kwak 2018's; the paper gives
# no schedule): SGD lr 1e-2, poly power 0.9, weight decay 5e-4, 8k iterations
# (about 6 epochs of VOC train_aug at batch 8). The new classifier learns 10x
# faster than the pre-trained backbone, as in PSA/IRN.
_base_ = ['./schedule_unary_poly.py']
optimizer = dict(type='SGD', lr=1e-2, momentum=0.9, weight_decay=5e-4)
optim_wrapper = dict(
    optimizer=optimizer,
    paramwise_cfg=dict(custom_keys={'classifier': dict(lr_mult=10.0)}))
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=8000,
         by_epoch=False)
]
# No pixel ground truth is needed: the classifier is not validated by mmseg
# metrics, seeds are evaluated by tools/eval_labels.py instead.
train_cfg = dict(type='IterBasedTrainLoop', max_iters=8000, val_interval=8000)
val_cfg = None
test_cfg = None
