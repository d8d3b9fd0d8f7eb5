# No mining of confident regions (the paper's Table 6): the next labels
# Y_{t+1} are the refined labels themselves (no superpixel rule, no region
# classifier). Everything else as deeplab_vgg16_voc.py.
#   python tools/train.py configs/iaffinity/ablations/no_mining_vgg16_voc.py
_base_ = ['../deeplab_vgg16_voc.py']

train_cfg = dict(mining=dict(mode='none'))
