"""The MiniLM off-topic experiment's features and gate (evals/guardrails_detection/minilm_offtopic.py)."""

from __future__ import annotations

import math

import numpy as np

from evals.guardrails_detection.minilm_offtopic import Row, doc_logit, offtopic_features


def _unit(rows: list[list[float]]) -> np.ndarray:
    a = np.asarray(rows, np.float32)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def test_offtopic_row_is_farthest_from_centroid_and_neighbours() -> None:
    emb = _unit([[1, 0.1, 0], [1, 0, 0.1], [0.9, 0.1, 0.1], [0, 0, 1]])  # the last one is off-topic
    centroid, nearest = offtopic_features(emb)
    assert int(np.argmin(centroid)) == 3 and int(np.argmin(nearest)) == 3
    others = emb[:3].sum(0)
    assert math.isclose(centroid[3], float(emb[3] @ (others / np.linalg.norm(others))), rel_tol=1e-6)
    assert math.isclose(nearest[3], float(max(emb[:3] @ emb[3])), rel_tol=1e-6)


def test_single_sentence_has_no_context() -> None:
    centroid, nearest = offtopic_features(_unit([[1, 2, 3]]))
    assert np.isnan(centroid).all() and np.isnan(nearest).all()


def test_gate_keeps_first_stage_logit_below_it() -> None:
    row = Row("x", 1, 0.0, np.asarray([-3.0, -2.5]), np.asarray([0.0, 0.9]), np.asarray([0.1, 0.9]))
    assert doc_logit(row, 2.0, 6.0, -1.0, gate=-2.0) == -2.5
    # Above the gate the off-topic first sentence is lifted: -3 + 1 + 2.4 - 1 = -0.6.
    assert math.isclose(doc_logit(row, 2.0, 6.0, -1.0, gate=-math.inf), -0.6)
