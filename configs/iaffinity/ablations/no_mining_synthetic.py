# No mining of confident regions (the paper's Table 6): the next labels
# Y_{t+1} are the refined labels themselves (no superpixel rule, no region
# classifier). Everything else as synthetic_demo.py.
#   python tools/train.py configs/iaffinity/ablations/no_mining_synthetic.py
_base_ = ['../synthetic_demo.py']

train_cfg = dict(mining=dict(mode='none'))
