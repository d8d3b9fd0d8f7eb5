"""losses of iaffinity."""
