"""Prompt-injection / jailbreak detector (runtime: numpy only).

Training and dataset code live in ``train``, ``dataset``, ``corpus``, ``sources`` and are
imported only by ``python -m guardrails.injection.train`` and the evals.
"""

from guardrails.injection.detector import DEFAULT_ARTIFACT, InjectionDetector
from guardrails.injection.features import FeatureConfig, WindowConfig

__all__ = ["DEFAULT_ARTIFACT", "FeatureConfig", "InjectionDetector", "WindowConfig"]
