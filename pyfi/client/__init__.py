"""pyfi client package."""
