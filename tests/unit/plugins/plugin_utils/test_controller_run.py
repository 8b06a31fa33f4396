"""_controller_run: who this run is, and whether a recorded run is gone, against real processes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest

from ansible_collections.fleet.rollout.plugins.plugin_utils import _controller_run
from ansible_collections.fleet.rollout.plugins.plugin_utils._controller_run import identify, run_gone


def stat_fields(pid: int) -> list[str]:
    with open("/proc/%d/stat" % pid, encoding="utf-8") as handle:
        text = handle.read()
    return text[text.rfind(")") + 2:].split()


def start_of(pid: int) -> int:
    return int(stat_fields(pid)[19])


@pytest.fixture
def sleeper():
    """A real process to stand for a run's ansible-playbook; killed (and reaped) at teardown."""
    procs = []

    def start():
        proc = subprocess.Popen(["sleep", "30"])
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def recorded(pid: int, pid_start: int | None = None, **changes) -> dict:
    """A lock's info as a run on this controller with that process would have recorded it."""
    controller = dict(identify(), pid=pid, pid_start=start_of(pid) if pid_start is None else pid_start)
    controller.update(changes)
    return {"strategy": "ramped", "controller": controller}


def test_identify_names_this_machine_and_boot():
    me = identify()
    assert set(me) == {"machine_id", "boot_id", "pid_ns", "pid", "pid_start", "host"}
    with open("/proc/sys/kernel/random/boot_id", encoding="utf-8") as handle:
        assert me["boot_id"] == handle.read().strip()
    assert me["pid_ns"] == os.readlink("/proc/self/ns/pid")
    assert isinstance(me["pid"], int) and me["pid_start"] == start_of(me["pid"])
    # No ansible-playbook above pytest: the parent stands for the run.
    assert me["pid"] == os.getppid()


def test_live_run_is_not_gone(sleeper):
    proc = sleeper()
    assert run_gone(recorded(proc.pid), identify()) == (
        False, "its run (pid %d on this controller) is still running" % proc.pid)


def test_exited_run_is_gone(sleeper):
    proc = sleeper()
    info = recorded(proc.pid)
    proc.kill()
    proc.wait()
    assert run_gone(info, identify()) == (True, "its run (pid %d on this controller) is no longer running" % proc.pid)


def test_exited_run_not_reaped_yet_is_gone(sleeper):
    proc = sleeper()
    info = recorded(proc.pid)
    proc.kill()
    deadline = time.monotonic() + 10
    while stat_fields(proc.pid)[0] != "Z":
        assert time.monotonic() < deadline, "sleep never became a zombie"
        time.sleep(0.01)
    assert run_gone(info, identify()) == (True, "its run (pid %d on this controller) has exited" % proc.pid)


def test_pid_now_used_by_another_process_is_gone(sleeper):
    proc = sleeper()
    assert run_gone(recorded(proc.pid, pid_start=start_of(proc.pid) + 1), identify()) == (
        True, "its run (pid %d on this controller) is gone: pid %d now belongs to another process" % (proc.pid, proc.pid))


@pytest.mark.parametrize("key, why", [
    ("machine_id", "it was taken on another controller (%s)"),
    ("boot_id", "it was taken on %s during another boot (or on another machine with the same machine id)"),
    ("pid_ns", "it was taken on %s from another PID namespace (container)"),
])
def test_run_elsewhere_is_not_gone_even_when_that_pid_is_free_here(sleeper, key, why):
    proc = sleeper()
    info = recorded(proc.pid, **{key: "0123456789abcdef0123456789abcdef"})
    proc.kill()
    proc.wait()
    assert run_gone(info, identify()) == (False, why % identify()["host"])


@pytest.mark.parametrize("key", ["machine_id", "boot_id", "pid_ns"])
def test_unknown_ids_are_never_equal(sleeper, key):
    proc = sleeper()
    info = recorded(proc.pid, **{key: ""})
    proc.kill()
    proc.wait()
    me = dict(identify(), **{key: ""})
    gone, why = run_gone(info, me)
    assert not gone and "unknown" in why


MALFORMED_CONTROLLERS = [
    {"pid": None}, {"pid": "1234"}, {"pid": True}, {"pid": 0}, {"pid": -1}, {"pid": 12.0}, {"pid": 2 ** 40},
    {"pid_start": None}, {"pid_start": "12"}, {"pid_start": 0}, {"pid_start": [1]},
    {"machine_id": None}, {"boot_id": 7}, {"pid_ns": {"a": 1}}, {"host": None, "machine_id": None},
]


@pytest.mark.parametrize("changes", MALFORMED_CONTROLLERS)
def test_malformed_record_is_not_gone(sleeper, changes):
    proc = sleeper()
    info = recorded(proc.pid)
    proc.kill()
    proc.wait()
    info["controller"].update(changes)
    gone, why = run_gone(info, identify())
    assert gone is False and isinstance(why, str) and why


@pytest.mark.parametrize("info", [None, {}, {"controller": None}, {"controller": "host1"}, {"controller": [1, 2]},
                                  "controller", 42, []])
def test_lock_without_controller_record_is_not_gone(info):
    gone, why = run_gone(info, identify())
    assert gone is False and why


@pytest.mark.parametrize("me", [None, {}, "me", {"machine_id": None, "boot_id": None, "pid_ns": None}])
def test_unknown_self_is_never_sure(sleeper, me):
    proc = sleeper()
    info = recorded(proc.pid)
    proc.kill()
    proc.wait()
    gone, why = run_gone(info, me)
    assert gone is False and why


# --- finding the ansible-playbook process -------------------------------------------------
# A script started so that its command line looks like ansible-playbook's prints its own pid and
# what identify() says in a process below it.

CHILD = textwrap.dedent("""\
    import importlib.util, sys
    spec = importlib.util.spec_from_file_location("controller_run", {helper!r})
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    print(module.identify()["pid"], flush=True)
""")

PLAYBOOK = textwrap.dedent("""\
    import os, subprocess, sys
    print(os.getpid(), flush=True)
    mode = sys.argv[-1]
    if mode == "fork":
        # A worker: forked, so its command line is the main process's.
        child = os.fork()
        if child == 0:
            exec(open({child!r}).read())
            os._exit(0)
        os.waitpid(child, 0)
    else:
        # A module or filter run through an interpreter of its own.
        subprocess.run([sys.executable, {child!r}], check=True)
""")


@pytest.fixture
def scripts(tmp_path):
    helper = _controller_run.__file__
    child = tmp_path / "child.py"
    child.write_text(CHILD.format(helper=helper))
    playbook = tmp_path / "ansible-playbook"
    playbook.write_text(PLAYBOOK.format(child=str(child)))
    interpreter = tmp_path / "bin" / "ansible-playbook"
    interpreter.parent.mkdir()
    interpreter.symlink_to(sys.executable)
    return {"playbook": str(playbook), "interpreter": str(interpreter)}


def pids(argv: list[str]) -> list[int]:
    done = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60)
    return [int(line) for line in done.stdout.split()]


@pytest.mark.parametrize("mode", ["fork", "subprocess"])
def test_identify_finds_ansible_playbook_as_argv0(scripts, mode):
    # The interpreter itself is called ansible-playbook: argv[0]'s basename.
    main, found = pids([scripts["interpreter"], scripts["playbook"], mode])
    assert found == main


@pytest.mark.parametrize("mode", ["fork", "subprocess"])
def test_identify_finds_ansible_playbook_as_argv1(scripts, mode):
    # python3 /path/to/ansible-playbook, as a venv's entry point script runs.
    main, found = pids([sys.executable, scripts["playbook"], mode])
    assert found == main


def test_identify_names_the_inner_playbook_of_a_nested_run(scripts, tmp_path):
    # ansible-playbook -> a task's plain python -> ansible-playbook -> worker: the inner run.
    outer = tmp_path / "outer.py"
    outer.write_text("import subprocess, sys\nsubprocess.run(sys.argv[1:], check=True)\n")
    start = textwrap.dedent("""\
        import os, subprocess, sys
        print(os.getpid(), flush=True)
        subprocess.run([sys.executable, {outer!r}, {interpreter!r}, {playbook!r}, "fork"], check=True)
    """).format(outer=str(outer), interpreter=scripts["interpreter"], playbook=scripts["playbook"])
    top = tmp_path / "ansible-playbook-outer"
    top.write_text(start)
    outer_main, inner_main, found = pids([sys.executable, str(top)])
    assert found == inner_main != outer_main
