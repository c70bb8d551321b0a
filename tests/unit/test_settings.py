"""Loading settings: TOML file, environment overrides, ``*_file`` secrets, validation, describe."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncsvc.errors import ConfigError
from syncsvc.settings import (
    DEMO_LDIF,
    LdapSettings,
    Settings,
    demo_settings,
    describe,
    find_config,
    load_settings,
)

MINIMAL = """
[ldap]
url = "ldap://ldap.example.com"
base_dn = "dc=example,dc=com"
"""


def write(folder: Path, text: str, name: str = "syncsvc.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(
    path: Path | None, env: dict[str, str] | None = None, **kw: Path
) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env or {}, **kw)
    return caught.value.problems


class TestFile:
    def test_values_from_the_file_are_coerced_by_annotation(self, tmp_path: Path) -> None:
        """TOML values land in the right fields with the right types; the rest stays default."""
        path = write(tmp_path, MINIMAL + 'flavor = "ad"\npage_size = 900\nstart_tls = true\n'
                     "connect_timeout = 3\n[http]\nport = 9000\n")

        settings = load_settings(path, {})

        assert ("ldap://ldap.example.com",) == settings.ldap.url
        assert ("ad", 900, True) == (settings.ldap.flavor, settings.ldap.page_size,
                                     settings.ldap.start_tls)
        assert 3.0 == settings.ldap.connect_timeout
        assert isinstance(settings.ldap.connect_timeout, float)
        assert (9000, "127.0.0.1") == (settings.http.port, settings.http.host)

    def test_source_is_the_file_path(self, tmp_path: Path) -> None:
        """Settings.source records which file the settings came from."""
        path = write(tmp_path, MINIMAL)

        assert path == load_settings(path, {}).source

    def test_url_string_is_split_on_whitespace_and_commas(self, tmp_path: Path) -> None:
        """ldap.url may be one string holding several URLs, for failover."""
        path = write(tmp_path, MINIMAL.replace(
            '"ldap://ldap.example.com"', '"ldap://a ldap://b:1389, ldaps://c"'))

        assert ("ldap://a", "ldap://b:1389", "ldaps://c") == load_settings(path, {}).ldap.url

    def test_mapping_is_a_free_form_table(self, tmp_path: Path) -> None:
        """[mapping] keys are passed through unchecked, for the mapping module to validate."""
        path = write(tmp_path, MINIMAL + '[mapping.user]\nanything = "goes"\n')

        assert {"user": {"anything": "goes"}} == load_settings(path, {}).mapping

    def test_missing_file_is_a_config_error(self, tmp_path: Path) -> None:
        """A config file that cannot be read is reported with its path."""
        missing = tmp_path / "nope.toml"

        (message,) = problems_of(missing)

        assert str(missing) in message

    def test_malformed_toml_is_a_config_error(self, tmp_path: Path) -> None:
        """A TOML syntax error is reported, not raised as a parser exception."""
        (message,) = problems_of(write(tmp_path, "[ldap\nurl = 1\n"))

        assert "not valid TOML" in message


class TestEnvironment:
    def test_env_overrides_the_file_and_is_coerced_from_text(self, tmp_path: Path) -> None:
        """SYNCSVC_<SECTION>__<KEY> beats the file; bools, numbers and lists parse from text."""
        path = write(tmp_path, MINIMAL + "page_size = 100\n")
        env = {
            "SYNCSVC_LDAP__PAGE_SIZE": "250",
            "SYNCSVC_LDAP__START_TLS": "yes",
            "SYNCSVC_LDAP__TLS_VERIFY": "0",
            "SYNCSVC_LDAP__READ_TIMEOUT": "2.5",
            "SYNCSVC_LDAP__URL": "ldap://x ldap://y",
            "SYNCSVC_HTTP__HOST": "0.0.0.0",
        }

        settings = load_settings(path, env)

        assert (250, True, False, 2.5) == (settings.ldap.page_size, settings.ldap.start_tls,
                                           settings.ldap.tls_verify, settings.ldap.read_timeout)
        assert ("ldap://x", "ldap://y") == settings.ldap.url
        assert "0.0.0.0" == settings.http.host

    def test_env_applies_on_top_of_the_demo_without_a_file(self, tmp_path: Path) -> None:
        """With no config file, env overrides still apply over the demo defaults."""
        (tmp_path / "d.ldif").write_text("", encoding="utf-8")
        env = {"SYNCSVC_HTTP__PORT": "9999", "SYNCSVC_LDAP__URL": "ldif://d.ldif"}

        settings = load_settings(None, env, cwd=tmp_path)

        assert 9999 == settings.http.port
        assert demo_settings(tmp_path).store.url == settings.store.url
        assert settings.source is None

    def test_prefixed_variables_without_double_underscore_are_ignored(self, tmp_path: Path) -> None:
        """SYNCSVC_CONFIG and similar knobs are not settings and are not reported."""
        path = write(tmp_path, MINIMAL)

        settings = load_settings(path, {"SYNCSVC_CONFIG": "x", "SYNCSVC_TEST_LDAP_URL": "y"})

        assert ("ldap://ldap.example.com",) == settings.ldap.url

    def test_bad_env_value_names_the_key_and_the_variable(self, tmp_path: Path) -> None:
        """A value that does not coerce is reported with its dotted key and env var name."""
        (message,) = problems_of(write(tmp_path, MINIMAL), {"SYNCSVC_LDAP__PAGE_SIZE": "lots"})

        assert message.startswith("ldap.page_size: expected an integer, got 'lots'")
        assert "SYNCSVC_LDAP__PAGE_SIZE" in message

    def test_unknown_env_section_is_a_problem(self, tmp_path: Path) -> None:
        """A misspelt section in an env var is reported with a suggestion."""
        (message,) = problems_of(write(tmp_path, MINIMAL), {"SYNCSVC_LDPA__URL": "ldap://x"})

        assert "SYNCSVC_LDPA__URL" in message
        assert "did you mean ldap?" in message

    def test_env_sets_mapping_entries_as_toml_values(self, tmp_path: Path) -> None:
        """SYNCSVC_MAPPING__<KEY> takes a TOML value when it parses, else plain text."""
        env = {"SYNCSVC_MAPPING__PRESET": "ad", "SYNCSVC_MAPPING__EXTRA": '["a", "b"]'}

        settings = load_settings(write(tmp_path, MINIMAL), env)

        assert {"preset": "ad", "extra": ["a", "b"]} == settings.mapping


class TestSecretFiles:
    def test_secret_is_read_from_file_with_one_newline_stripped(self, tmp_path: Path) -> None:
        """bind_password_file supplies bind_password, minus exactly one trailing newline."""
        (tmp_path / "pw").write_text("s3cret\n\n", encoding="utf-8")
        path = write(tmp_path, MINIMAL + 'bind_password_file = "pw"\n')

        assert "s3cret\n" == load_settings(path, {}).ldap.bind_password

    def test_secret_file_from_env_overrides_the_file_value(self, tmp_path: Path) -> None:
        """SYNCSVC_LDAP__BIND_PASSWORD_FILE beats bind_password given in the TOML file."""
        secret = tmp_path / "pw"
        secret.write_text("from-file\n", encoding="utf-8")
        path = write(tmp_path, MINIMAL + 'bind_password = "placeholder"\n')

        settings = load_settings(path, {"SYNCSVC_LDAP__BIND_PASSWORD_FILE": str(secret)})

        assert "from-file" == settings.ldap.bind_password

    def test_unreadable_secret_file_names_key_and_path(self, tmp_path: Path) -> None:
        """A missing secret file is reported with the key and the path, not a traceback."""
        path = write(tmp_path, MINIMAL + 'bind_password_file = "missing-pw"\n')

        (message,) = problems_of(path)

        assert message.startswith("ldap.bind_password_file: cannot read")
        assert str(tmp_path / "missing-pw") in message

    def test_value_and_file_together_is_a_problem(self, tmp_path: Path) -> None:
        """Giving both bind_password and bind_password_file in one source is ambiguous."""
        (tmp_path / "pw").write_text("a", encoding="utf-8")
        path = write(tmp_path, MINIMAL + 'bind_password = "b"\nbind_password_file = "pw"\n')

        (message,) = problems_of(path)

        assert "not both" in message

    def test_file_suffix_on_a_non_secret_is_unknown(self, tmp_path: Path) -> None:
        """Only secret fields accept the _file form."""
        (message,) = problems_of(write(tmp_path, MINIMAL + 'base_dn_file = "x"\n'))

        assert message.startswith("unknown key ldap.base_dn_file")

    def test_mistyped_secret_is_not_echoed(self, tmp_path: Path) -> None:
        """A secret of the wrong type is reported without its value."""
        path = write(tmp_path, MINIMAL + "bind_password = 123456789\n")

        (message,) = problems_of(path)

        assert "123456789" not in message
        assert message.startswith("ldap.bind_password: expected a string")


class TestAllProblemsAtOnce:
    def test_four_problems_in_one_file_are_all_reported(self, tmp_path: Path) -> None:
        """One bad file with four different mistakes yields four problems naming each key."""
        path = write(tmp_path, """
[ldap]
url = "ldap://ldap.example.com"
base_dn = "dc=example,dc=com"
bindpw = "x"
page_size = "lots"
flavor = "novell"
[sync]
guard_max_fraction = 1.5
""")

        problems = problems_of(path)

        assert 4 == len(problems), problems
        assert any("unknown key ldap.bindpw (did you mean bind_password?)" in p for p in problems)
        assert any(p.startswith("ldap.page_size: expected an integer, got 'lots'")
                   for p in problems)
        assert any(p.startswith("ldap.flavor: expected one of") and "'ad'" in p for p in problems)
        assert any(p.startswith("sync.guard_max_fraction: must be between 0 and 1")
                   for p in problems)
        assert all(str(path) in p for p in problems)

    def test_unknown_section_is_reported_with_a_suggestion(self, tmp_path: Path) -> None:
        """A misspelt [section] is a problem, not silently ignored."""
        (message,) = problems_of(write(tmp_path, MINIMAL + "[stroe]\nurl = 'x'\n"))

        assert message.startswith("unknown section [stroe] (did you mean store?)")


class TestValidation:
    @pytest.mark.parametrize("url", ["http://x", "ldap://", "ldap://h:0", "ldap://h:70000",
                                     "ldap://h/dc=x"])
    def test_bad_ldap_url_is_reported(self, tmp_path: Path, url: str) -> None:
        """Each ldap.url must be ldap://host[:port], ldaps://host[:port] or ldif://path."""
        (message,) = problems_of(write(tmp_path, MINIMAL), {"SYNCSVC_LDAP__URL": url})

        assert message.startswith(f"ldap.url: {url!r}")

    def test_credentials_in_ldap_url_are_refused_and_masked(self, tmp_path: Path) -> None:
        """A password inside an ldap:// URL is refused without echoing it."""
        env = {"SYNCSVC_LDAP__URL": "ldap://admin:hunter2@h"}

        (message,) = problems_of(write(tmp_path, MINIMAL), env)

        assert message.startswith("ldap.url: 'ldap://admin:***@h'")
        assert "hunter2" not in message

    def test_ldif_url_needs_an_existing_file(self, tmp_path: Path) -> None:
        """An ldif:// URL naming a missing file is a problem naming the resolved path."""
        (message,) = problems_of(write(tmp_path, '[ldap]\nurl = "ldif://gone.ldif"\n'))

        assert str(tmp_path / "gone.ldif") in message

    def test_start_tls_with_ldaps_is_a_problem(self, tmp_path: Path) -> None:
        """StartTLS on an already-TLS ldaps:// connection is contradictory."""
        path = write(tmp_path, MINIMAL.replace("ldap://", "ldaps://") + "start_tls = true\n")

        (message,) = problems_of(path)

        assert message.startswith("ldap.start_tls:")

    def test_base_dn_required_for_a_live_server(self, tmp_path: Path) -> None:
        """An ldap:// URL without base_dn is a problem."""
        (message,) = problems_of(write(tmp_path, '[ldap]\nurl = "ldap://h"\n'))

        assert message.startswith("ldap.base_dn:")

    def test_base_dn_optional_for_ldif(self, tmp_path: Path) -> None:
        """An LDIF source needs no base_dn."""
        (tmp_path / "d.ldif").write_text("", encoding="utf-8")

        settings = load_settings(write(tmp_path, '[ldap]\nurl = "ldif:///' +
                                       str(tmp_path / "d.ldif").lstrip("/") + '"\n'), {})

        assert "" == settings.ldap.base_dn

    def test_unreadable_ca_file_is_a_problem(self, tmp_path: Path) -> None:
        """A ca_file that cannot be opened is reported with its path."""
        (message,) = problems_of(write(tmp_path, MINIMAL + 'ca_file = "ca.pem"\n'))

        assert message.startswith(f"ldap.ca_file: cannot read {tmp_path / 'ca.pem'}")

    @pytest.mark.parametrize(("env", "key"), [
        ({"SYNCSVC_LDAP__PAGE_SIZE": "0"}, "ldap.page_size"),
        ({"SYNCSVC_LDAP__PAGE_SIZE": "10001"}, "ldap.page_size"),
        ({"SYNCSVC_LDAP__CONNECT_TIMEOUT": "0"}, "ldap.connect_timeout"),
        ({"SYNCSVC_LDAP__READ_TIMEOUT": "-1"}, "ldap.read_timeout"),
        ({"SYNCSVC_HTTP__PORT": "65536"}, "http.port"),
        ({"SYNCSVC_SYNC__GUARD_MAX_DELETIONS": "-1"}, "sync.guard_max_deletions"),
        ({"SYNCSVC_SYNC__GUARD_MAX_FRACTION": "nan"}, "sync.guard_max_fraction"),
    ])
    def test_out_of_range_numbers_are_problems(
        self, tmp_path: Path, env: dict[str, str], key: str
    ) -> None:
        """Numbers outside their allowed range are reported with their key."""
        (message,) = problems_of(write(tmp_path, MINIMAL), env)

        assert message.startswith(f"{key}: must be")

    def test_sync_driver_store_url_is_a_problem(self, tmp_path: Path) -> None:
        """store.url must use an async driver; the password is not echoed."""
        path = write(tmp_path, MINIMAL + '[store]\nurl = "postgresql+psycopg2://u:hunter2@db/x"\n')

        (message,) = problems_of(path)

        assert message.startswith("store.url: driver 'postgresql+psycopg2' is not supported")
        assert "hunter2" not in message


class TestRewritesAndPaths:
    @pytest.mark.parametrize(("given", "expected"), [
        ("postgresql://u:p@db:5432/sync", "postgresql+asyncpg://u:p@db:5432/sync"),
        ("postgres://u:p@db/sync", "postgresql+asyncpg://u:p@db/sync"),
        ("postgresql+asyncpg://u:p@db/sync", "postgresql+asyncpg://u:p@db/sync"),
        ("sqlite:////abs/x.db", "sqlite+aiosqlite:////abs/x.db"),
    ])
    def test_plain_store_urls_get_the_async_driver(
        self, tmp_path: Path, given: str, expected: str
    ) -> None:
        """postgresql:// becomes postgresql+asyncpg://, sqlite:// becomes sqlite+aiosqlite://."""
        path = write(tmp_path, MINIMAL + f'[store]\nurl = "{given}"\n')

        assert expected == load_settings(path, {}).store.url

    def test_relative_sqlite_path_is_relative_to_the_config_folder(self, tmp_path: Path) -> None:
        """sqlite:///data/x.db in /etc/app/syncsvc.toml means /etc/app/data/x.db."""
        conf = tmp_path / "conf"
        conf.mkdir()
        path = write(conf, MINIMAL + '[store]\nurl = "sqlite+aiosqlite:///data/x.db"\n')

        settings = load_settings(path, {}, cwd=tmp_path / "elsewhere")

        assert f"sqlite+aiosqlite:///{conf / 'data' / 'x.db'}" == settings.store.url

    def test_relative_ldif_path_is_relative_to_the_config_folder(self, tmp_path: Path) -> None:
        """ldif://dir/x.ldif is resolved against the config file's folder."""
        (tmp_path / "dir").mkdir()
        (tmp_path / "dir" / "x.ldif").write_text("", encoding="utf-8")
        path = write(tmp_path, '[ldap]\nurl = "ldif://dir/x.ldif"\n')

        settings = load_settings(path, {})

        assert ("ldif://" + str(tmp_path / "dir" / "x.ldif"),) == settings.ldap.url


class TestDemoAndFind:
    def test_demo_reads_the_bundled_ldif_into_sqlite_in_cwd(self, tmp_path: Path) -> None:
        """The demo uses the bundled LDIF and syncsvc.db in the working folder; rest default."""
        demo = demo_settings(tmp_path)

        assert ("ldif://" + str(DEMO_LDIF),) == demo.ldap.url
        assert f"sqlite+aiosqlite:///{tmp_path}/syncsvc.db" == demo.store.url
        assert Settings().http == demo.http
        assert Settings().sync == demo.sync

    def test_cli_path_wins(self, tmp_path: Path) -> None:
        """--config beats SYNCSVC_CONFIG and ./syncsvc.toml."""
        write(tmp_path, MINIMAL)

        found = find_config("a.toml", {"SYNCSVC_CONFIG": "b.toml"}, tmp_path)

        assert tmp_path / "a.toml" == found

    def test_env_path_beats_local_file(self, tmp_path: Path) -> None:
        """SYNCSVC_CONFIG beats ./syncsvc.toml."""
        write(tmp_path, MINIMAL)

        assert Path("/etc/b.toml") == find_config(None, {"SYNCSVC_CONFIG": "/etc/b.toml"}, tmp_path)

    def test_local_file_then_demo(self, tmp_path: Path) -> None:
        """./syncsvc.toml is used if present, otherwise None (the demo)."""
        assert find_config(None, {}, tmp_path) is None

        path = write(tmp_path, MINIMAL)

        assert path == find_config(None, {}, tmp_path)


class TestDescribe:
    def test_secrets_are_masked(self, tmp_path: Path) -> None:
        """bind_password shows as *** and store.url keeps its shape with the password hidden."""
        (tmp_path / "pw").write_text("s3cret", encoding="utf-8")
        path = write(tmp_path, MINIMAL + 'bind_password_file = "pw"\n'
                     '[store]\nurl = "postgresql://sync:hunter2@db/sync"\n'
                     '[mapping]\napi_token = "tok"\n')

        shown = describe(load_settings(path, {}))

        assert "***" == shown["ldap"]["bind_password"]
        assert "postgresql+asyncpg://sync:***@db/sync" == shown["store"]["url"]
        assert "***" == shown["mapping"]["api_token"]
        assert "s3cret" not in repr(shown) and "hunter2" not in repr(shown)

    def test_plain_data_out(self, tmp_path: Path) -> None:
        """Tuples become lists and the source a string, ready for JSON or TOML output."""
        path = write(tmp_path, MINIMAL)

        shown = describe(load_settings(path, {}))

        assert ["ldap://ldap.example.com"] == shown["ldap"]["url"]
        assert str(path) == shown["source"]
        assert "" == shown["ldap"]["bind_password"]

    def test_repr_of_settings_hides_the_password(self) -> None:
        """The dataclass repr leaves out bind_password, so logging settings cannot leak it."""
        assert "s3cret" not in repr(LdapSettings(bind_password="s3cret"))
