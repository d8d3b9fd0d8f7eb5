# Iterative PSA (the paper's Sec. 4.4, Table 3) on the synthetic demo: the
# pairwise stage is PSA's AffinityNet (AffinityRefiner, random walk on
# learned affinities) in place of the SPN, and the confident regions are
# mined without the region classifier (the paper's Table 4 contrasts PSA's
# rule-based confident regions with its confidence network; the loop's
# closest rule is the 80 % superpixel majority). Everything else as
# synthetic_demo.py.
#   python tools/train.py configs/iaffinity/ablations/psa_synthetic.py
_base_ = ['../synthetic_demo.py']

train_cfg = dict(
    pairwise=dict(
        model=dict(
            _delete_=True,
            type='AffinityRefiner',
            data_preprocessor=_base_.data_preprocessor,
            unary=None,  # the step's trained unary net, filled in by the loop
            # the demo's ResNet-18: stages 2-4, all at stride 8
            backbone=dict(_base_.backbone, out_indices=(1, 2, 3)),
            head=dict(
                type='AffinityHead',
                in_channels=(32, 64, 128),
                in_index=(0, 1, 2),
                level_channels=(16, 32, 64),
                radius=5,  # PSA: 5 at stride 8
                beta=8.0,  # PSA: 8
                # PSA walks 2^8 = 256 steps on ~41 x 41 maps; the demo's
                # 12-16 px maps are ~3x smaller, so ~256 / 3^2 steps spread
                # as far (diffusion distance grows as sqrt(t))
                num_iters=32),
            loss_affinity=dict(type='AffinityLoss')),
        # the affinity loss needs no superpixels
        pipeline=_base_.train_pipeline),
    mining=dict(mode='majority'))
