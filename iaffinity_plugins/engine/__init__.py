"""engine of iaffinity."""
