# No mining of confident regions (the paper's Table 6) on the photo demo:
# Y_t is f_t's own output (no superpixel rule, no region classifier), so
# g_t learns from the unary net it refines (Sec. 4.5.2). Everything else as
# photo_demo.py.
#   python tools/train.py configs/iaffinity/ablations/no_mining_photo.py
_base_ = ['../photo_demo.py']

train_cfg = dict(mining=dict(mode='none'))
