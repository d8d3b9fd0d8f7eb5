# Pairwise (SPN) network g_t (paper Sec. 4.1): poly decay with base lr 1e-5,
# power 0.5, K = 20,000 iterations, momentum 0.9.
_base_ = ['./schedule_unary_poly.py']
optimizer = dict(type='SGD', lr=1e-5, momentum=0.9, weight_decay=5e-4)
optim_wrapper = dict(optimizer=optimizer)
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.5, begin=0, end=20000,
         by_epoch=False)
]
