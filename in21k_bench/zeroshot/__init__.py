"""CLIP zero-shot: prompts, embeddings, the hierarchical relabel (p-HZR) and zero-shot classification."""
