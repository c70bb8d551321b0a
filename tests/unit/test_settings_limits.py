"""Limits of the SCIM endpoint and the public pages: a value that would fail silently at run
time (every list empty, every body 413, every filter tooMany) is a config problem naming its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncsvc.errors import ConfigError
from syncsvc.settings import load_settings


@pytest.mark.parametrize(("key", "value"), [
    ("scim.default_page_size", "0"),
    ("scim.max_results", "-5"),
    ("scim.max_filter_results", "-1"),
    ("scim.bulk_max_operations", "0"),
    ("scim.bulk_max_payload", "10"),
    ("scim.max_request_bytes", "0"),
    ("profiles.public_max_age", "-1"),
])
def test_out_of_range_limits_name_their_key(tmp_path: Path, key: str, value: str) -> None:
    """The message starts with the key and says which variable set it."""
    section, name = key.split(".")
    variable = f"SYNCSVC_{section.upper()}__{name.upper()}"

    with pytest.raises(ConfigError) as caught:
        load_settings(None, {variable: value}, cwd=tmp_path)

    (message,) = caught.value.problems
    assert message.startswith(f"{key}: must be >= ")
    assert f"got {value}" in message and variable in message


def test_zero_filter_results_means_no_limit(tmp_path: Path) -> None:
    """max_filter_results = 0 is the documented "no limit", not a problem."""
    settings = load_settings(None, {"SYNCSVC_SCIM__MAX_FILTER_RESULTS": "0"}, cwd=tmp_path)

    assert 0 == settings.scim.max_filter_results
