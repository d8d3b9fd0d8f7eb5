# No pairwise network (the paper's Table 8): no affinity is learned;
# f_{t+1} trains on the mined Y_t (the refined labels would be f_t's own
# tag-restricted argmax, which mining would then never reach). Everything else as synthetic_demo.py.
#   python tools/train.py configs/iaffinity/ablations/no_pairwise_synthetic.py
_base_ = ['../synthetic_demo.py']

train_cfg = dict(pairwise=None, unary_labels='mined')
