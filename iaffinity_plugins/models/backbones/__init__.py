"""backbones of iaffinity."""
from .efficientnet_lite import EfficientNetLite  # noqa: F401
from .vgg16_largefov import VGG16LargeFOV  # noqa: F401
