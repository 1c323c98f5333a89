"""streams service."""
