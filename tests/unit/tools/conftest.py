"""Load the lab tools (not Python packages) as modules for the tests."""

from __future__ import annotations

import importlib.util
import os
import sys
import threading

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def load_tool(name: str, relpath: str):
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, relpath))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def repo_root():
    return REPO


@pytest.fixture(scope="session")
def build_release():
    return load_tool("build_release", "tools/sample_app/build_release.py")


@pytest.fixture(scope="session")
def tarball_check():
    return load_tool("check_collection_tarball", "scripts/check_collection_tarball.py")


@pytest.fixture(scope="session")
def junit_summary():
    return load_tool("junit_summary", "scripts/junit_summary.py")


@pytest.fixture(scope="session")
def sample_app():
    return load_tool("sample_app", "tools/sample_app/sample_app.py")


@pytest.fixture(scope="session")
def probe():
    return load_tool("rollout_probe", "tools/probe/rollout_probe.py")


@pytest.fixture
def run_app(sample_app, tmp_path):
    """Start real sample-app servers on loopback; returns a starter function."""
    servers = []

    def start(version="1.0.0", defaults=None, **env):
        environ = {"SAMPLE_APP_PORT": "0", "SAMPLE_APP_BIND": "127.0.0.1", "SAMPLE_APP_DATA_DIR": str(tmp_path / "data")}
        environ.update({"SAMPLE_APP_" + k.upper(): str(v) for k, v in env.items()})
        settings = sample_app.load_settings(environ, {"version": version, "defaults": defaults or {}})
        server = sample_app.make_server(settings)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        servers.append(server)
        return server, "http://127.0.0.1:%d" % server.server_address[1]

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
