"""pyfi scheduler package."""
