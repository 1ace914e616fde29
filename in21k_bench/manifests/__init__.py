"""Versioned label manifests on disk: the checksummed index, the manifest files, the version order."""
