"""Canonical serialisations: JSON for hashing/storage, YAML for human diffs."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import yaml

from prompts.models import PromptContent


def canonical_json(obj: Any) -> str:
    # sort_keys + fixed separators make the text a function of the data only,
    # so the same content hashes identically whatever the key order it came in.
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def content_hash(content: PromptContent) -> str:
    return hashlib.sha256(canonical_json(content.content_dict()).encode("utf-8")).hexdigest()


class _DiffDumper(yaml.SafeDumper):
    pass


def _str_representer(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    # Block style keeps one template line per diff line; the default quoted
    # style would put a whole multi-line message on one unreadable line.
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_DiffDumper.add_representer(str, _str_representer)


def canonical_yaml(content: PromptContent) -> str:
    data = content.content_dict()
    # Messages first (the part people read), then sorted variables and defaults.
    ordered = {
        "messages": data["messages"],
        "variables": {k: data["variables"][k] for k in sorted(data["variables"])},
        "defaults": {k: data["defaults"][k] for k in sorted(data["defaults"])},
    }
    return yaml.dump(ordered, Dumper=_DiffDumper, sort_keys=False, allow_unicode=True, width=1000)
