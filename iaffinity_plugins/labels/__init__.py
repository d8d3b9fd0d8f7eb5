"""labels of iaffinity."""
