"""pyfi agent package."""
