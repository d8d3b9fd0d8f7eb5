"""evaluation of iaffinity."""
