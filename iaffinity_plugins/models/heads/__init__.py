"""heads of iaffinity."""
from .deeplabv2_head import DeepLabV2Head  # noqa: F401
from .spn_head import SPNHead  # noqa: F401
