# Region confidence network (paper Sec. 4.1, eq. 11): step decay, base lr
# 1e-3, lr * 0.1 every S = 20,000 iterations, momentum 0.9.
_base_ = ['./schedule_unary_poly.py']
optimizer = dict(type='SGD', lr=1e-3, momentum=0.9, weight_decay=5e-4)
optim_wrapper = dict(optimizer=optimizer)
param_scheduler = [
    # No `end`: the decay keeps stepping if a leaf trains longer than S.
    dict(type='StepLR', step_size=20000, gamma=0.1, begin=0, by_epoch=False)
]
