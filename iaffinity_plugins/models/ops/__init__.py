"""ops of iaffinity."""
