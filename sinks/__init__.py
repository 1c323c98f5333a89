"""sinks service."""
