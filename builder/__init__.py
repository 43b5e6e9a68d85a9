"""builder service."""
