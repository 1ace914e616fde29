"""Maintainers' tools: vendor the sources, build manifests, generate the benchmark docs."""
