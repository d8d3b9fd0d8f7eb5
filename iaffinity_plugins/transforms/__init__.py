"""transforms of iaffinity."""
