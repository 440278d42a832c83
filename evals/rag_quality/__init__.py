"""Retrieval quality over the Python reference topics: hit@5 and MRR@10 for dense, BM25 and hybrid.

    .venv/bin/python -m evals.rag_quality.run      # writes evals/rag_quality/results.json
"""
