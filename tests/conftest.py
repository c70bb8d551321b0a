"""Session-wide test plugins.

- :class:`tests.support.logscan.LogScanPlugin`: every log line of the run is scanned for
  secrets (bind passwords, API tokens); a leak fails the run at the end.
"""

from __future__ import annotations

import pytest

from tests.support.logscan import PLUGIN_NAME, LogScan, LogScanPlugin


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin(PLUGIN_NAME):
        config.pluginmanager.register(LogScanPlugin(), PLUGIN_NAME)


@pytest.fixture(scope="session")
def logscan(pytestconfig: pytest.Config) -> LogScan:
    """The session's secret scanner: add a secret, or allow one a test plants on purpose."""
    plugin = pytestconfig.pluginmanager.get_plugin(PLUGIN_NAME)
    assert isinstance(plugin, LogScanPlugin)
    return plugin.scan
