"""pyfi worker package."""
