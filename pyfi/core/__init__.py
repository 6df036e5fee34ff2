"""pyfi core package."""
