"""Networks of the EM loop: backbones, heads, the SPN op, losses, segmentors."""
from . import backbones, heads, losses, ops, segmentors  # noqa: F401
