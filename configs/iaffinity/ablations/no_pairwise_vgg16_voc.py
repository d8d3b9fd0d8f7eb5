# No pairwise network (the paper's Table 8): no affinity is learned, the
# refined labels are the unary net's own (tag-restricted argmax) and mining
# works on them. Everything else as deeplab_vgg16_voc.py.
#   python tools/train.py configs/iaffinity/ablations/no_pairwise_vgg16_voc.py
_base_ = ['../deeplab_vgg16_voc.py']

train_cfg = dict(pairwise=None, unary_labels='mined')
