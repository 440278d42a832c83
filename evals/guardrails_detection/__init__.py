"""Held-out detection metrics for the fast guardrails (PII rail, injection detector)."""
