# The photo demo with the region smoothness loss L_s (the paper's
# Sec. 4.5.4, eq. (8)): the SPN trains on the cross-entropy plus L_s on the
# superpixels of each crop, as the paper and the other configs have it. The
# own-data recipe leaves L_s out (its E-step pools G's output in the
# superpixels instead; docs/ablations.md), so on photographs this is the
# ablation. Everything else as photo_demo.py.
#   python tools/train.py configs/iaffinity/ablations/smoothness_photo.py
_base_ = ['../photo_demo.py']

train_cfg = dict(
    pairwise=dict(
        model=dict(loss_smooth=dict(_base_.smoothness_loss, _delete_=True)),
        pipeline=_base_.superpixel_pipeline))
