"""backbones of iaffinity."""
