"""The rules fingerprint: equal rules, equal fingerprint (in any process); any change, another."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from syncsvc.mapping import compile_mapping
from syncsvc.sync.fingerprint import rules_fingerprint

RULES = {"phone_region": "US", "rules": [{"kind": "email"}]}


def fingerprint(flavor: str = "openldap", mapping: dict[str, Any] | None = None,
                enrich: dict[str, Any] | None = None) -> str:
    return rules_fingerprint(compile_mapping(flavor, mapping or {}), enrich or {})


class TestRulesFingerprint:
    def test_same_rules_same_fingerprint_in_another_process(self) -> None:
        """The fingerprint is stored and compared by later processes: no address or hash seed
        may leak into it."""
        code = ("from syncsvc.mapping import compile_mapping;"
                "from syncsvc.sync.fingerprint import rules_fingerprint;"
                f"print(rules_fingerprint(compile_mapping('openldap', {{}}), {RULES!r}))")
        other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               check=True, env={"PYTHONHASHSEED": "123"})
        assert fingerprint(enrich=RULES) == other.stdout.strip()

    def test_every_part_of_the_rules_counts(self) -> None:
        """Flavour (its preset), a mapping override, an enrichment setting: each changes it."""
        prints = {
            fingerprint(),
            fingerprint(flavor="389ds"),
            fingerprint(mapping={"user": {"title": False}}),
            fingerprint(mapping={"user": {"title": "description"}}),
            fingerprint(enrich=RULES),
            fingerprint(enrich={**RULES, "phone_region": "GB"}),
        }
        assert 6 == len(prints)
