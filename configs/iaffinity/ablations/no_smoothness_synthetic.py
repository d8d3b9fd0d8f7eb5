# No region smoothness loss L_s (the paper's Sec. 4.5.4, eq. (8)): the SPN
# trains on the cross-entropy alone; with no loss on them, superpixels are no
# longer loaded for it. Everything else as synthetic_demo.py.
#   python tools/train.py configs/iaffinity/ablations/no_smoothness_synthetic.py
_base_ = ['../synthetic_demo.py']

train_cfg = dict(
    pairwise=dict(
        model=dict(loss_smooth=None), pipeline=_base_.train_pipeline))
