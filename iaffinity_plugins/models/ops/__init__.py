"""ops of iaffinity."""
from .spn_scan import normalize_gates, spn_propagate, spn_scan  # noqa: F401
