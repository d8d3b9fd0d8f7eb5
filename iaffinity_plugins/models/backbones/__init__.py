"""backbones of iaffinity."""
from .vgg16_largefov import VGG16LargeFOV  # noqa: F401
