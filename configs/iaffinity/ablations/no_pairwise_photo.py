# No pairwise network (the paper's Table 8) on the photo demo: no affinity
# is learned; f_{t+1} trains on the mined Y_t (the refined labels would be
# f_t's own output). Everything else as photo_demo.py.
#   python tools/train.py configs/iaffinity/ablations/no_pairwise_photo.py
_base_ = ['../photo_demo.py']

train_cfg = dict(pairwise=None, unary_labels='mined')
