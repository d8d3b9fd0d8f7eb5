# No region smoothness loss L_s (the paper's Sec. 4.5.4, eq. (8)) on the
# photo demo: the SPN trains on the cross-entropy alone, without
# superpixels. Everything else as photo_demo.py.
#   python tools/train.py configs/iaffinity/ablations/no_smoothness_photo.py
_base_ = ['../photo_demo.py']

train_cfg = dict(
    pairwise=dict(
        model=dict(loss_smooth=None),
        pipeline=_base_.load_labels + [
            _base_.train_resize, *_base_.crop_flip,
            dict(type='PackWSSSInputs')]))
