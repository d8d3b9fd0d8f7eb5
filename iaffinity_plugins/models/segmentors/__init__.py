"""segmentors of iaffinity."""
