# The photo demo: the own-data recipe (deeplab_lite0_custom.py) on a set
# composited from the photographs that ship with scikit-image
# (iaffinity_plugins/datasets/photo_demo.py, docs/datasets.md), generated
# into data_root on first use. Only the data is set here: whatever the demo
# needs is in the own-data config, so a user's photographs get it too.
#   python tools/train.py configs/iaffinity/photo_demo.py
_base_ = ['./deeplab_lite0_custom.py']

data_root = 'data/photo_demo'
photo_demo = dict(
    type='PhotoDemoDataset',
    data_root=data_root,
    generator_cfg=dict(num_train=400, num_val=100, min_size=144,
                       max_size=224, max_objects=4, seed=0),
    tags_file=None)  # no tags file: tags come from the masks
train_dataloader = dict(dataset=photo_demo)
val_dataloader = dict(dataset=photo_demo)
test_dataloader = dict(dataset=photo_demo)
