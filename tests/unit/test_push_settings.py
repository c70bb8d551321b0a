"""``[[targets]]``: downstream SCIM services in the config, from the file, the environment and
secret files; validated all at once; secrets never shown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from syncsvc.errors import ConfigError
from syncsvc.settings import TargetAuthSettings, TargetSettings, describe, load_settings

BASE = """
[ldap]
url = "ldap://ldap.example.com"
base_dn = "dc=example,dc=com"
"""

ONE_TARGET = BASE + """
[[targets]]
name = "slack"
url = "https://api.example.com/scim/v2/"
groups = ["Sales Team", "Engineering"]
rename = { title = "jobTitle" }
users_filter = 'active eq true and emails[type eq "work"]'
[targets.auth]
token_file = "slack.token"
"""


def write(folder: Path, text: str) -> Path:
    path = folder / "syncsvc.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path, env: dict[str, str] | None = None) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env or {})
    return caught.value.problems


class TestFromTheFile:
    def test_no_targets_by_default(self, tmp_path: Path) -> None:
        """Without [[targets]] nothing is pushed (and nothing is captured)."""
        assert () == load_settings(write(tmp_path, BASE), {}).targets

    def test_an_array_of_tables_becomes_typed_targets(self, tmp_path: Path) -> None:
        """Each [[targets]] table is a TargetSettings with its nested [targets.auth]."""
        (tmp_path / "slack.token").write_text("xoxp-secret\n", encoding="utf-8")
        path = write(tmp_path, ONE_TARGET + """
[[targets]]
name = "okta"
url = "http://127.0.0.1:8001/scim/v2"
update_method = "patch"
timeout = 5
[targets.auth]
kind = "oauth2"
token_url = "https://login.example.com/oauth2/token"
client_id = "syncsvc"
client_secret = "s3cr3t"
""")

        slack, okta = load_settings(path, {}).targets

        assert TargetSettings(
            name="slack", url="https://api.example.com/scim/v2",  # trailing / dropped
            auth=TargetAuthSettings(token="xoxp-secret"), groups=("Sales Team", "Engineering"),
            rename={"title": "jobTitle"},
            users_filter='active eq true and emails[type eq "work"]') == slack
        assert ("okta", "patch", 5.0) == (okta.name, okta.update_method, okta.timeout)
        assert ("oauth2", "syncsvc", "s3cr3t") == (okta.auth.kind, okta.auth.client_id,
                                                   okta.auth.client_secret)
        assert ("externalId", "userName") == okta.match_by

    def test_a_single_table_is_refused(self, tmp_path: Path) -> None:
        """[targets] (one table) instead of [[targets]] says what was expected."""
        path = write(tmp_path, BASE + '[targets]\nname = "x"\n')

        assert any("expected an array of tables ([[targets]])" in p for p in problems_of(path))


class TestFromTheEnvironment:
    def test_indexed_variables_override_and_add_targets(self, tmp_path: Path) -> None:
        """SYNCSVC_TARGETS__<n>__<KEY> overrides table n; the next index adds a target."""
        (tmp_path / "slack.token").write_text("from-file", encoding="utf-8")
        (tmp_path / "pw").write_text("hunter2\n", encoding="utf-8")
        env = {
            "SYNCSVC_TARGETS__0__ENABLED": "false",
            "SYNCSVC_TARGETS__0__GROUPS": '["A team", "B"]',
            "SYNCSVC_TARGETS__0__AUTH__TOKEN": "from-env",
            "SYNCSVC_TARGETS__1__NAME": "peer",
            "SYNCSVC_TARGETS__1__URL": "http://127.0.0.1:9000/scim/v2",
            "SYNCSVC_TARGETS__1__AUTH__KIND": "basic",
            "SYNCSVC_TARGETS__1__AUTH__USERNAME": "sync",
            "SYNCSVC_TARGETS__1__AUTH__PASSWORD_FILE": "pw",
            "SYNCSVC_TARGETS__1__RENAME": '{ title = "jobTitle" }',
        }

        slack, peer = load_settings(write(tmp_path, ONE_TARGET), env).targets

        assert (False, ("A team", "B"), "from-env") == (slack.enabled, slack.groups,
                                                        slack.auth.token)
        assert ("peer", "basic", "sync", "hunter2") == (
            peer.name, peer.auth.kind, peer.auth.username, peer.auth.password)
        assert {"title": "jobTitle"} == peer.rename

    def test_a_gap_in_the_indexes_is_reported(self, tmp_path: Path) -> None:
        """Index 2 with only one target in the file is a mistake, not a silent skip."""
        env = {"SYNCSVC_TARGETS__2__NAME": "x", "SYNCSVC_TARGETS__X__NAME": "y",
               "SYNCSVC_TARGETS__0__URL__HOST": "z"}
        (tmp_path / "slack.token").write_text("t", encoding="utf-8")

        problems = problems_of(write(tmp_path, ONE_TARGET), env)

        assert any("no [[targets]] table number 1" in p for p in problems)
        assert any(p.startswith("SYNCSVC_TARGETS__X__NAME: expected") for p in problems)
        assert "targets[0].url is not a table [from SYNCSVC_TARGETS__0__URL__HOST]" in problems


class TestValidation:
    def test_every_problem_is_reported_at_once(self, tmp_path: Path) -> None:
        """Names, URLs, auth, the filter, numbers and cron: all in one ConfigError."""
        path = write(tmp_path, BASE + """
[[targets]]
name = "Bad_Name"
url = "ftp://example.com/scim"
users_filter = "userName eq"
concurrency = 0
timeout = -1
member_batch = 0
reconcile_cron = "every day"
match_by = ["externalId", "user name"]
quarantine_after = 0
[targets.auth]
kind = "basic"

[[targets]]
name = "dup"
url = "https://user:pw@example.com/scim"
[targets.auth]
kind = "oauth2"
token_url = "nope"

[[targets]]
name = "dup"
[targets.auth]
kind = "none"
""")

        problems = "\n".join(problems_of(path))

        for expected in (
            "targets[0].name: 'Bad_Name' must be",
            "targets[0].url: 'ftp://example.com/scim' is not an http:// or https:// URL",
            "targets[0].users_filter: not a SCIM filter",
            "targets[0].concurrency: must be 1..64, got 0",
            "targets[0].timeout: must be > 0 seconds",
            "targets[0].member_batch: must be 1..10000",
            "targets[0].quarantine_after: must be >= 1",
            "targets[0].reconcile_cron: 'every day' is not a cron expression",
            "targets[0].match_by: 'user name' is not a SCIM attribute path",
            "targets[0].auth.username: required for auth kind 'basic'",
            "targets[0].auth.password: required for auth kind 'basic' (or password_file)",
            "targets[1].url: 'https://user:***@example.com/scim': put credentials in the auth",
            "targets[1].auth.token_url: 'nope' is not an http:// or https:// URL",
            "targets[1].auth.client_id: required",
            "targets[1].auth.client_secret: required",
            "targets[2].url: required",
            "targets[2].name: 'dup' is already the name of targets[1]",
        ):
            assert expected in problems
        assert "pw" not in problems.replace("password", "")

    def test_bad_values_name_their_key_and_source(self, tmp_path: Path) -> None:
        """A value of the wrong type names the key and the variable it came from."""
        (tmp_path / "slack.token").write_text("t", encoding="utf-8")
        env = {"SYNCSVC_TARGETS__0__TIMEOUT": "soon", "SYNCSVC_TARGETS__0__ON_REMOVE": "purge",
               "SYNCSVC_TARGETS__0__COLOUR": "red"}

        problems = problems_of(write(tmp_path, ONE_TARGET), env)

        assert ("targets[0].timeout: expected a number, got 'soon' "
                "[from SYNCSVC_TARGETS__0__TIMEOUT]") in problems
        assert any(p.startswith("targets[0].on_remove: expected one of 'deactivate', 'delete'")
                   for p in problems)
        assert any(p.startswith("unknown key targets[0].colour") for p in problems)

    def test_a_secret_and_its_file_together_are_refused(self, tmp_path: Path) -> None:
        (tmp_path / "slack.token").write_text("t", encoding="utf-8")
        path = write(tmp_path, ONE_TARGET.replace('token_file = "slack.token"',
                                                  'token_file = "slack.token"\ntoken = "x"'))

        assert any("give either targets[0].auth.token or targets[0].auth.token_file" in p
                   for p in problems_of(path))


class TestSecrets:
    def test_describe_masks_every_target_secret(self, tmp_path: Path) -> None:
        """check-config --show prints targets with token/password/client_secret as ***."""
        (tmp_path / "slack.token").write_text("xoxp-very-secret", encoding="utf-8")
        env = {"SYNCSVC_TARGETS__1__NAME": "b", "SYNCSVC_TARGETS__1__URL": "https://b.example",
               "SYNCSVC_TARGETS__1__AUTH__KIND": "oauth2",
               "SYNCSVC_TARGETS__1__AUTH__TOKEN_URL": "https://b.example/token",
               "SYNCSVC_TARGETS__1__AUTH__CLIENT_ID": "me",
               "SYNCSVC_TARGETS__1__AUTH__CLIENT_SECRET": "client-very-secret"}
        settings = load_settings(write(tmp_path, ONE_TARGET), env)

        shown = describe(settings)
        text = json.dumps(shown)

        assert "***" == shown["targets"][0]["auth"]["token"]
        assert "***" == shown["targets"][1]["auth"]["client_secret"]
        assert "" == shown["targets"][1]["auth"]["token"]  # unset stays visible as unset
        assert "very-secret" not in text
        assert "very-secret" not in repr(settings)
