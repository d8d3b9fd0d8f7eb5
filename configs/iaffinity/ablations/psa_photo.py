# Iterative PSA (the paper's Sec. 4.4, Table 3) on the photo demo: PSA's
# AffinityNet (AffinityRefiner, a random walk on learned affinities) on
# ImageNet lite0 levels 2-4 in place of the SPN, and confident regions by
# the 80 % superpixel rule without the region classifier (see
# psa_synthetic.py). Everything else as photo_demo.py, whose pairwise
# pipeline (labelled crops, no superpixels) serves AffinityNet too.
#   python tools/train.py configs/iaffinity/ablations/psa_photo.py
_base_ = ['../photo_demo.py']

train_cfg = dict(
    pairwise=dict(
        model=dict(
            _delete_=True,
            type='AffinityRefiner',
            data_preprocessor=_base_.data_preprocessor,
            unary=None,  # the step's trained unary net, filled in by the loop
            backbone=dict(_base_.lite0_backbone, out_indices=(2, 3, 4),
                          output_stride=8),
            head=dict(
                type='AffinityHead',
                in_channels=(40, 112, 320),
                in_index=(0, 1, 2),
                level_channels=(16, 32, 64),
                radius=5,  # PSA: 5 at stride 8
                beta=8.0,  # PSA: 8
                # PSA walks 2^8 = 256 steps on ~41 x 41 maps; stride-8 maps
                # of 144-224 px photos are ~2x smaller: ~256 / 2^2 steps
                # spread as far (diffusion distance grows as sqrt(t))
                num_iters=64),
            loss_affinity=dict(type='AffinityLoss'))),
    mining=dict(mode='majority'))
