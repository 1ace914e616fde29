"""Versioned label manifests on disk: the checksummed index and the manifest files."""
