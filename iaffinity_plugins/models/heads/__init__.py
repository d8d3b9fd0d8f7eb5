"""heads of iaffinity."""
from .affinity_head import AffinityHead  # noqa: F401
from .deeplabv2_head import DeepLabV2Head  # noqa: F401
from .spn_head import SPNHead  # noqa: F401
