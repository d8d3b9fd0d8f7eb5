"""ops of iaffinity."""
from .banded_affinity import (neighbour_offsets, pairwise_affinity,  # noqa: F401,E501
                              random_walk)
from .spn_scan import normalize_gates, spn_propagate, spn_scan  # noqa: F401
