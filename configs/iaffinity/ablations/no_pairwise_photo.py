# No pairwise network (the paper's Table 8) on the photo demo: no affinity
# is learned; the refined labels are f_t's probabilities averaged inside
# each superpixel (superpixel_pooling, as the main run pools G alpha_u), and
# f_{t+1} trains on them. Everything else as photo_demo.py.
#   python tools/train.py configs/iaffinity/ablations/no_pairwise_photo.py
_base_ = ['../photo_demo.py']

train_cfg = dict(pairwise=None)
