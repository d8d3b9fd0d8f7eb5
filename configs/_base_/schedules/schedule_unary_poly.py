# Unary network f_t (paper Sec. 4.1, eq. 10): SGD, base lr 1e-3, poly decay
# power 0.9 per iteration over K = 20,000 iterations, momentum 0.9, weight
# decay 5e-4 (DeepLab).
optimizer = dict(type='SGD', lr=1e-3, momentum=0.9, weight_decay=5e-4)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer, clip_grad=None)
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=20000,
         by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=20000, val_interval=2000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
