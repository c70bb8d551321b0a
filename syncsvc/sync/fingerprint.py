"""The fingerprint of the rules a sync applies: the effective mapping and the enrichment config.

An incremental run re-derives only the entries it re-reads; under changed rules the others
would keep what the old rules made. So each successful full run stores this fingerprint, and
an incremental run that finds another one runs as a full run instead (see the pipeline).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Final

from syncsvc.enrich.photos import PHOTO_ATTRIBUTES
from syncsvc.mapping import CompiledMapping

__all__ = ["FINGERPRINT_KEY", "rules_fingerprint"]

FINGERPRINT_KEY: Final = "rules.fingerprint"
"""The sync_state key of the fingerprint of the last successful full run."""

# Bump when the store derives something new from entries that an incremental run would only
# apply to the entries it re-reads (as the photo thumbnails were): a full run then follows.
_DERIVATION_VERSION: Final = 1


def rules_fingerprint(mapping: CompiledMapping, enrich: Mapping[str, Any]) -> str:
    """SHA-256 over the compiled mapping (the flavour's preset with the config's overrides,
    so a preset change counts too) and the ``[enrich]`` table as configured."""
    # The compiled rules' repr holds every setting and no function or address (their
    # compiled bodies are repr=False), so it is stable from one process to the next.
    blob = json.dumps(
        {"mapping": repr(mapping), "enrich": enrich, "photos": PHOTO_ATTRIBUTES,
         "derivation": _DERIVATION_VERSION},
        sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=repr,
    )
    return hashlib.sha256(blob.encode()).hexdigest()
