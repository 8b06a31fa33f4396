"""release_activate's engine on a real release tree and a real HTTP health endpoint.

systemctl is the one stand-in (there is no systemd under the unit tests): it records what it was asked
and starts or stops the endpoint's answers like a unit would. The release and strategy scenarios run the
real thing on the lab fleet."""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.fleet.rollout.plugins.module_utils._release_activate import (
    Activation, ActivationFailed, compose_state, previous_after, protected_releases, releases_to_remove, switch_link)


class App:
    """A health endpoint whose answer depends on which release `current` points at (a bad one answers 500)."""

    def __init__(self, link: str, bad: set[str]):
        self.link, self.bad, self.running = link, bad, True
        app = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802  pylint: disable=invalid-name
                version = os.path.basename(os.readlink(app.link)) if os.path.lexists(app.link) else ""
                healthy = app.running and version not in app.bad
                self.send_response(200 if healthy else 500)
                self.end_headers()
                self.wfile.write(version.encode())

            def log_message(self, *args):  # keep pytest's output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/healthz" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.calls: list[list[str]] = []

    def systemctl(self, args):
        self.calls.append(args)
        if args[0] == "is-active":
            return (0, "active\n", "") if self.running else (3, "inactive\n", "")
        if args[0] in ("restart", "start", "reload"):
            self.running = True
        return 0, "", ""


@pytest.fixture()
def tree(tmp_path):
    releases = tmp_path / "releases"
    for version, mtime in (("1.0.0", 1000), ("2.0.0", 2000), ("2.0.1-bad", 3000)):
        (releases / version).mkdir(parents=True)
        marker = releases / version / ".release-sha256"
        marker.write_text("ab" * 32 + "\n")
        os.utime(marker, (mtime, mtime))
    os.symlink(str(releases / "1.0.0"), str(tmp_path / "current"))
    state = {"service": "shop", "root": str(tmp_path), "slots": {"main": {
        "version": "1.0.0", "previous": None, "since": "2026-01-01T00:00:00Z",
        "history": [{"version": "1.0.0", "outcome": "deployed", "from": None, "previous": None,
                     "time": "2026-01-01T00:00:00Z"}]}}}
    (tmp_path / "release-state.json").write_text(json.dumps(state))
    (tmp_path / "main.env").write_text('PORT="8080"\n')
    return tmp_path


@pytest.fixture()
def app(tree):
    served = App(str(tree / "current"), bad={"2.0.1-bad"})
    yield served
    served.server.shutdown()


def params(tree, app, version, **extra):
    base = {"service": "shop", "slot": "main", "root": str(tree), "releases_dir": str(tree / "releases"),
            "current_link": str(tree / "current"), "state_file": str(tree / "release-state.json"),
            "version": version, "sha256": "AB" * 32, "live_before": "1.0.0", "rollback": False,
            "files": [{"path": str(tree / "main.env"), "content": 'PORT="8080"\n', "mode": "0600", "unit": False}],
            "unit": "shop.service", "restart_mode": "restart",
            "health": {"url": app.url, "successes": 2, "timeout": 5, "interval": 0.05},
            "keep": 0, "marker": ".release-sha256", "remove_failed": True, "history_size": 20, "host": "app1"}
    base.update(extra)
    return base


def state_of(tree):
    return json.loads((tree / "release-state.json").read_text())


def test_deploy_switches_restarts_gates_and_records(tree, app):
    result = Activation(params(tree, app, "2.0.0"), app.systemctl).run()
    assert os.readlink(tree / "current") == str(tree / "releases" / "2.0.0")
    assert result["outcome"] == "deployed" and result["changed"] and result["previous"] == "1.0.0"
    assert ["restart", "shop.service"] in app.calls and ["daemon-reload"] not in app.calls
    slot = state_of(tree)["slots"]["main"]
    assert (slot["version"], slot["previous"], slot["sha256"]) == ("2.0.0", "1.0.0", "ab" * 32)
    assert slot["history"][-1]["outcome"] == "deployed" and slot["history"][-1]["from"] == "1.0.0"
    assert result["gate"]["healthy"] is True


def test_same_release_again_changes_nothing(tree, app):
    Activation(params(tree, app, "2.0.0"), app.systemctl).run()
    again = Activation(params(tree, app, "2.0.0", live_before="2.0.0"), app.systemctl).run()
    assert again["changed"] is False and again["outcome"] == "unchanged"
    assert len(state_of(tree)["slots"]["main"]["history"]) == 2


def test_changed_unit_file_is_written_and_reloaded_into_systemd(tree, app):
    unit = tree / "shop.service"
    unit.write_text("[Service]\nExecStart=old\n")
    spec = {"path": str(unit), "content": "[Service]\nExecStart=new\n", "mode": "0644", "unit": True}
    result = Activation(params(tree, app, "1.0.0", files=[spec]), app.systemctl).run()
    assert unit.read_text() == "[Service]\nExecStart=new\n" and oct(unit.stat().st_mode & 0o777) == "0o644"
    assert result["outcome"] == "reconfigured" and ["daemon-reload"] in app.calls


def test_failed_gate_puts_back_link_and_files_records_and_removes_the_release(tree, app):
    env = {"path": str(tree / "main.env"), "content": 'PORT="9999"\n', "mode": "0600", "unit": False}
    health = {"url": app.url, "successes": 2, "timeout": 1, "interval": 0.05}
    with pytest.raises(ActivationFailed) as failed:
        Activation(params(tree, app, "2.0.1-bad", files=[env], health=health), app.systemctl).run()
    message = str(failed.value)
    assert 'fleet.rollout.release: shop 2.0.1-bad failed on app1 (slot main) at "health gate' in message
    assert "rolled back to 1.0.0, which is healthy again" in message
    assert os.readlink(tree / "current") == str(tree / "releases" / "1.0.0")
    assert (tree / "main.env").read_text() == 'PORT="8080"\n'
    assert not (tree / "releases" / "2.0.1-bad").exists()
    slot = state_of(tree)["slots"]["main"]
    assert slot["version"] == "1.0.0" and slot["history"][-1]["outcome"] == "failed"
    assert slot["history"][-1]["version"] == "2.0.1-bad" and failed.value.result["back_healthy"] is True


def test_restored_undoes_a_hook_failure_after_the_switch(tree, app):
    Activation(params(tree, app, "2.0.0"), app.systemctl).run()
    undo = Activation(params(tree, app, "2.0.0", files=[]), app.systemctl)
    failure = undo.restore("hook exploded", "Run the after_activate hooks")
    assert 'at "Run the after_activate hooks": hook exploded -- rolled back to 1.0.0' in str(failure)
    assert os.readlink(tree / "current") == str(tree / "releases" / "1.0.0")


def test_not_installed_release_is_refused_before_any_change(tree, app):
    with pytest.raises(ActivationFailed, match="3.0.0 is not installed"):
        Activation(params(tree, app, "3.0.0"), app.systemctl).run()
    assert app.calls == [] and os.readlink(tree / "current") == str(tree / "releases" / "1.0.0")


def test_keep_removes_the_oldest_unprotected_release(tree, app):
    result = Activation(params(tree, app, "2.0.0", keep=2), app.systemctl).run()
    # 2.0.1-bad (newest marker) and 2.0.0 are kept by count; 1.0.0 is previous, so protected.
    assert result["removed"] == []
    (tree / "releases" / "0.9.0").mkdir()
    (tree / "releases" / "0.9.0" / ".release-sha256").write_text("x\n")
    os.utime(tree / "releases" / "0.9.0" / ".release-sha256", (10, 10))
    result = Activation(params(tree, app, "2.0.0", live_before="2.0.0", keep=2), app.systemctl).run()
    assert result["removed"] == ["0.9.0"]


def test_keep_never_removes_a_release_a_live_link_points_at_even_without_the_state_file(tree, app):
    # Another slot's live release, named by no state file (it was lost): only its link says it is live.
    for version, mtime in (("0.9.0", 20), ("0.8.0", 10)):
        (tree / "releases" / version).mkdir()
        (tree / "releases" / version / ".release-sha256").write_text("ab" * 32 + "\n")
        os.utime(tree / "releases" / version / ".release-sha256", (mtime, mtime))
    (tree / "slots" / "blue").mkdir(parents=True)
    os.symlink("../../releases/0.9.0", str(tree / "slots" / "blue" / "current"))
    (tree / "release-state.json").unlink()
    result = Activation(params(tree, app, "2.0.0", keep=1), app.systemctl).run()
    assert result["removed"] == ["0.8.0"]
    assert (tree / "releases" / "0.9.0").is_dir() and (tree / "releases" / "1.0.0").is_dir()


def test_check_mode_changes_nothing(tree, app):
    result = Activation(params(tree, app, "2.0.0"), app.systemctl).run(check_mode=True)
    assert result["changed"] and result["outcome"] == "deployed"
    assert os.readlink(tree / "current") == str(tree / "releases" / "1.0.0") and app.calls == []
    assert state_of(tree)["slots"]["main"]["version"] == "1.0.0"


def test_previous_after_a_rollback_steps_back_along_the_lineage():
    slot = {"history": [{"version": "1.0.0", "outcome": "deployed", "previous": "0.9.0"},
                        {"version": "2.0.0", "outcome": "deployed", "previous": "1.0.0"}]}
    assert previous_after(slot, "1.0.0", "2.0.0", switched=True, rollback=True) == "0.9.0"
    assert previous_after(slot, "3.0.0", "2.0.0", switched=True, rollback=False) == "2.0.0"
    assert previous_after({"previous": "x"}, "2.0.0", "2.0.0", switched=False, rollback=False) == "x"


def test_compose_state_keeps_since_for_the_same_release_and_trims_history():
    state = {"slots": {"main": {"version": "2.0.0", "since": "then", "history": [{"n": i} for i in range(5)]}}}
    new = compose_state(state, "shop", "/opt/shop", "main", "/opt/shop/releases", "shop.service", "/opt/shop/current",
                        "2.0.0", "ab", "2.0.0", "2.0.0", "1.0.0", "reconfigured", 3, 0.0)
    slot = new["slots"]["main"]
    assert slot["since"] == "then" and len(slot["history"]) == 3 and slot["history"][-1]["outcome"] == "reconfigured"


def test_releases_to_remove_and_protection():
    releases = {"a": {"sha256": "x", "mtime": 1}, "b": {"sha256": "x", "mtime": 2}, "c": {"sha256": "x", "mtime": 3},
                ".incoming-d": {"sha256": "x", "mtime": 4}, "e": {"sha256": None, "mtime": None}}
    assert releases_to_remove(releases, 1, {"a"}) == ["b"]
    assert protected_releases({"slots": {"blue": {"version": "a", "previous": None}}}, "b") == {"a", "b"}


def test_switch_link_replaces_in_one_rename(tmp_path):
    (tmp_path / "r1").mkdir()
    (tmp_path / "r2").mkdir()
    os.symlink(str(tmp_path / "r1"), str(tmp_path / "current"))
    (tmp_path / "current.next").write_text("left over by an interrupted switch")
    switch_link(str(tmp_path / "current"), str(tmp_path / "r2"))
    assert os.readlink(tmp_path / "current") == str(tmp_path / "r2") and not os.path.lexists(tmp_path / "current.next")
