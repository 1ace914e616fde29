"""Clustering methods: features -> predictions (k-means, kNN, TEMI / SCANv2 heads, the linear probe)."""
