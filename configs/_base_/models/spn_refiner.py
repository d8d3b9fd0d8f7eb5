# Pairwise network g_t (paper Sec. 3.2.2): an SPN head refining a frozen
# unary segmentor. ``unary`` is a placeholder: the EM loop (or a leaf config)
# fills in the unary segmentor config and its ``unary_checkpoint``.
# The paper's optimiser (SGD, lr 1e-5, momentum 0.9, poly power 0.5) is in
# ../schedules/schedule_pairwise_poly.py; change the lr in a leaf config with
#   optim_wrapper = dict(optimizer=dict(lr=1e-3))
# (the small synthetic demo needs a larger one).
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255)
model = dict(
    type='SPNRefiner',
    data_preprocessor=data_preprocessor,
    unary=None,
    unary_checkpoint=None,
    head=dict(
        type='SPNHead',
        num_classes=21,  # K, background included
        # None: alpha_p = G alpha_u on the K class probabilities (the
        # paper); an int P adds 1x1 projections K -> P -> K (see SPNHead)
        propagation_channels=None,
        num_gate_groups=1,
        channels=(16, 32, 64),
        # the scan runs at 1/2 of the input: CPU cost, see SPNHead
        propagation_stride=2,
        # 'mean' (not SPN's 'max'): learns far better from imperfect labels
        # and keeps G linear (docs/benchmarks.md, pairwise head section)
        merge='mean',
        # 'normalized': CE on log(G alpha_u / sum_k); 'residual': log
        # alpha_u + change (the projected design)
        output='normalized'),
    loss_decode=dict(
        type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0,
        avg_non_ignore=True),
    # lambda of eq. (8); None = the "no L_s" ablation
    loss_smooth=dict(type='SuperpixelSmoothnessLoss', loss_weight=1.0),
    restrict_to_tags=True,
    ignore_index=255)
