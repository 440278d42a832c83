"""Model backends: each speaks one upstream (Triton, litellm providers, local embeddings)."""
