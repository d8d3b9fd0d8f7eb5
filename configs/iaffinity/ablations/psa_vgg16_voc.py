# Iterative PSA (the paper's Sec. 4.4, Table 3: "confident regions are
# mined from the PSA model and the affinities are iteratively learned") on
# PASCAL VOC with VGG16: the pairwise stage is PSA's AffinityNet
# (AffinityRefiner) with PSA's settings, and the confident regions are mined
# without the region classifier (80 % superpixel majority, the loop's
# closest rule to PSA's). Everything else as deeplab_vgg16_voc.py.
#   python tools/train.py configs/iaffinity/ablations/psa_vgg16_voc.py
_base_ = ['../deeplab_vgg16_voc.py']

# PSA's train_aff.py: batch 8, 8 epochs of train_aug (10,582 images)
psa_iters = 10582
train_cfg = dict(
    pairwise=dict(
        model=dict(
            _delete_=True,
            type='AffinityRefiner',
            data_preprocessor=_base_.data_preprocessor,
            unary=None,  # the step's trained unary net, filled in by the loop
            # ImageNet VGG16 (PSA initialises AffinityNet from ImageNet):
            # pool3, pool4, pool5, all at stride 8
            backbone=dict(_base_.vgg16, out_indices=(2, 3, 4)),
            head=dict(
                type='AffinityHead',
                in_channels=(256, 512, 512),
                in_index=(0, 1, 2),
                level_channels=(64, 128, 256),  # PSA's 448 channels
                radius=5,
                beta=8.0,
                num_iters=256),  # PSA: logt = 8
            loss_affinity=dict(type='AffinityLoss')),
        # the affinity loss needs no superpixels
        pipeline=_base_.label_pipeline,
        batch_size=8,
        # PSA: SGD (no momentum) lr 0.1, weight decay 5e-4, poly 0.9; new
        # layers x10, biases x2 without decay
        optim_wrapper=dict(
            _delete_=True,
            type='OptimWrapper',
            optimizer=dict(type='SGD', lr=0.1, weight_decay=5e-4),
            paramwise_cfg=dict(
                bias_lr_mult=2.0,
                bias_decay_mult=0.0,
                custom_keys={'head': dict(lr_mult=10.0)})),
        param_scheduler=[
            dict(type='PolyLR', power=0.9, begin=0, end=psa_iters,
                 by_epoch=False, eta_min=0.0)
        ],
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=psa_iters)),
    mining=dict(mode='majority'))
