# No pairwise network (the paper's Table 8): no affinity is learned, the
# refined labels are the unary net's own (tag-restricted argmax) and mining
# works on them. Everything else as synthetic_demo.py.
#   python tools/train.py configs/iaffinity/ablations/no_pairwise_synthetic.py
_base_ = ['../synthetic_demo.py']

train_cfg = dict(pairwise=None)
