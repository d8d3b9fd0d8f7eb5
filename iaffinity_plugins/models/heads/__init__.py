"""heads of iaffinity."""
