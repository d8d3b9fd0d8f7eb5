"""datasets of iaffinity."""
