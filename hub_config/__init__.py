"""hub_config service."""
