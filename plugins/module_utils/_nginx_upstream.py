# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Own an nginx include file of upstreams and routing blocks, and apply it safely.

The logic behind ``fleet.rollout.nginx_upstream``. Checking and rendering the
structured input are pure functions. ``apply`` writes the file, validates it
with ``nginx -t``, reloads, confirms that a new worker generation started and
optionally waits until the old workers have exited ("drained" for nginx),
restoring the previous file whenever validation or the reload fails.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import re
import shutil
import socket
import subprocess
import time
from decimal import Decimal, InvalidOperation

from ansible_collections.fleet.rollout.plugins.module_utils._atomic_file import read_text, write_atomic

HEADER = (
    "# Managed by fleet.rollout.nginx_upstream: do not edit by hand,\n"
    "# the next run of the module overwrites this file.\n"
)

METHODS = ("round_robin", "least_conn", "ip_hash", "random", "hash")
METHODS_WITHOUT_BACKUP = ("ip_hash", "hash", "random")
# Words that nginx reads as a parameter of the map block, not as a source value.
MAP_RESERVED_KEYS = ("default", "include")

NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+\Z")
VARIABLE_RE = re.compile(r"^\$[A-Za-z_][A-Za-z0-9_]*\Z")
BRACED_VARIABLE_RE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")
HOST_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOST_RE = re.compile(r"^%s(?:\.%s)*\Z" % (HOST_LABEL, HOST_LABEL))
UNIX_PATH_RE = re.compile(r"^/[A-Za-z0-9_./@+=,:-]*\Z")
BARE_TOKEN_RE = re.compile(r"^[A-Za-z0-9_.:/@$-]+\Z")
FORBIDDEN_CHARS = ";{}\"'#"

RELOAD_CONFIRM_TIMEOUT = 10.0
POLL_INTERVAL = 0.05
COMMAND_TIMEOUT = 60.0
SHUTTING_DOWN = "nginx: worker process is shutting down"


class NginxApplyError(Exception):
    """Applying failed; ``result`` is what the module returns along with the message."""

    def __init__(self, message: str, result: dict):
        super().__init__(message)
        self.result = result


# --- checking the input (pure) ----------------------------------------------

def text_problem(value, complex_value: bool = False) -> str | None:
    """Why ``value`` cannot be written into an nginx directive, or None.

    ``complex_value``: nginx expands variables in it, so ``${name}`` is allowed.
    """
    if value is None:
        return "is required"
    if not isinstance(value, str):
        return "expected a string, got %s" % type(value).__name__
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        return "must not contain newlines or other control characters"
    plain = BRACED_VARIABLE_RE.sub("", value) if complex_value else value
    bad = sorted(set(char for char in plain if char in FORBIDDEN_CHARS))
    if bad:
        allowed = " (braces only as in ${name})" if complex_value else ""
        return "must not contain %s%s: they would change the nginx syntax, got %r" % (" ".join(bad), allowed, value)
    if "\\\\" in value or value.endswith("\\"):
        return "must not contain a double backslash or end with a backslash (nginx unescapes them), got %r" % value
    return None


def parse_percent(value) -> Decimal | None:
    """A split_clients bucket share: None for the rest (omitted or ``*``), else a Decimal in (0, 100].

    Accepts 12, 12.5, "12.5" and "12.5%"; at most two decimals (nginx's 0.01 % steps).
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("expected a number such as 12.5, or '*' for the rest, got %r" % value)
    text = str(value).strip()
    if text == "*":
        return None
    number = text[:-1].strip() if text.endswith("%") else text
    try:
        percent = Decimal(number)
    except InvalidOperation:
        raise ValueError("expected a number such as 12.5, or '*' for the rest, got %r" % value) from None
    if not percent.is_finite() or percent <= 0 or percent > 100:
        raise ValueError("must be above 0 and at most 100, got %r" % value)
    if percent != percent.quantize(Decimal("0.01")):
        raise ValueError("at most two decimals (nginx splits in 0.01 %% steps), got %r" % value)
    return percent


def address_problem(address) -> str | None:
    """Why ``address`` is not ``host:port``, ``[ipv6]:port`` or ``unix:/path``, or None."""
    expected = "expected host:port, [ipv6]:port or unix:/path"
    problem = text_problem(address)
    if problem:
        return problem
    if address.startswith("unix:"):
        if not UNIX_PATH_RE.match(address[5:]):
            return "%s; a unix socket path must be absolute and contain no spaces, got %r" % (expected, address)
        return None
    if address.startswith("["):
        host, sep, port = address[1:].partition("]:")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return "%s; %r is not an IPv6 address" % (expected, host) if sep else "%s, got %r" % (expected, address)
    else:
        host, sep, port = address.rpartition(":")
        if not sep or not HOST_RE.match(host):
            return "%s, got %r" % (expected, address)
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        return "%s with a port 1-65535, got %r" % (expected, address)
    return None


def _int_problem(value, minimum: int) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        return "expected an integer, got %r" % (value,)
    if value < minimum:
        return "must be at least %d, got %d" % (minimum, value)
    return None


def _items(value, where: str, problems: list) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        problems.append("%s: expected a list" % where)
        return []
    good = []
    for index, item in enumerate(value):
        if isinstance(item, dict):
            good.append((index, item))
        else:
            problems.append("%s[%d]: expected a dictionary, got %r" % (where, index, item))
    return good


def _check_upstream(where: str, upstream: dict, problems: list) -> None:
    name = upstream.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        problems.append("%s.name: expected letters, digits, '_', '.' or '-', got %r" % (where, name))
    method = upstream.get("method") or "round_robin"
    if method not in METHODS:
        problems.append("%s.method: expected one of %s, got %r" % (where, ", ".join(METHODS), method))
    hash_key = upstream.get("hash_key")
    if method == "hash":
        if not hash_key:
            problems.append("%s.hash_key: required with method=hash (for example '$cookie_uid')" % where)
        else:
            problem = text_problem(hash_key, complex_value=True)
            if problem:
                problems.append("%s.hash_key: %s" % (where, problem))
    elif hash_key is not None:
        problems.append("%s.hash_key: only used with method=hash, the method is %s" % (where, method))
    problem = _int_problem(upstream.get("keepalive"), 1)
    if problem:
        problems.append("%s.keepalive: %s" % (where, problem))
    servers = _items(upstream.get("servers"), where + ".servers", problems)
    if not upstream.get("servers"):
        problems.append("%s.servers: an upstream needs at least one server (take one out with down: true)" % where)
    for index, server in servers:
        spot = "%s.servers[%d]" % (where, index)
        problem = address_problem(server.get("address"))
        if problem:
            problems.append("%s.address: %s" % (spot, problem))
        for key, minimum, hint in (("weight", 1, " (nginx rejects weight=0; take a server out with down: true)"),
                                   ("max_fails", 0, ""), ("fail_timeout", 0, "")):
            problem = _int_problem(server.get(key), minimum)
            if problem:
                problems.append("%s.%s: %s%s" % (spot, key, problem, hint))
        for key in ("down", "backup"):
            if server.get(key) is not None and not isinstance(server.get(key), bool):
                problems.append("%s.%s: expected true or false, got %r" % (spot, key, server.get(key)))
        if server.get("backup") and method in METHODS_WITHOUT_BACKUP:
            problems.append("%s.backup: nginx does not allow backup servers with method=%s; use round_robin or "
                            "least_conn, or drop backup" % (spot, method))


def _check_variable(where: str, variable, defined: dict, problems: list) -> None:
    if not isinstance(variable, str) or not VARIABLE_RE.match(variable):
        problems.append("%s: expected a variable name such as $fleet_pool, got %r" % (where, variable))
    elif variable in defined:
        problems.append("%s: %s is already defined by %s" % (where, variable, defined[variable]))
    else:
        defined[variable] = where


def _check_map(where: str, block: dict, defined: dict, problems: list) -> None:
    source = block.get("source")
    problem = text_problem(source, complex_value=True)
    if problem:
        problems.append("%s.source: %s" % (where, problem))
    elif "$" not in source:
        problems.append("%s.source: expected an nginx variable such as $cookie_variant, got %r" % (where, source))
    _check_variable(where + ".variable", block.get("variable"), defined, problems)
    if block.get("default") is not None:
        problem = text_problem(block["default"], complex_value=True)
        if problem:
            problems.append("%s.default: %s" % (where, problem))
    seen: dict[str, int] = {}
    for index, entry in _items(block.get("entries"), where + ".entries", problems):
        spot = "%s.entries[%d]" % (where, index)
        key = entry.get("key")
        problem = text_problem(key)
        if problem:
            problems.append("%s.key: %s" % (spot, problem))
        elif key in MAP_RESERVED_KEYS:
            problems.append("%s.key: %r is a parameter of nginx's map block; use the map's default option, or write "
                            "'\\%s' to match the literal string" % (spot, key, key))
        else:
            # nginx compares plain keys case-insensitively; regular expressions (~) as written.
            folded = key if key.startswith("~") else key.lower()
            if folded in seen:
                problems.append("%s.key: %r repeats entries[%d] (nginx compares keys case-insensitively)"
                                % (spot, key, seen[folded]))
            seen.setdefault(folded, index)
        problem = text_problem(entry.get("value"), complex_value=True)
        if problem:
            problems.append("%s.value: %s" % (spot, problem))


def _check_split(where: str, block: dict, defined: dict, problems: list) -> None:
    key = block.get("key")
    problem = text_problem(key, complex_value=True)
    if problem:
        problems.append("%s.key: %s" % (where, problem))
    elif not key:
        problems.append("%s.key: expected what to hash, such as '${remote_addr}${http_user_agent}' or '$cookie_uid'"
                        % where)
    _check_variable(where + ".variable", block.get("variable"), defined, problems)
    buckets = _items(block.get("buckets"), where + ".buckets", problems)
    if not buckets:
        problems.append("%s.buckets: give at least one bucket" % where)
    total = Decimal(0)
    rest = None
    for index, bucket in buckets:
        spot = "%s.buckets[%d]" % (where, index)
        try:
            percent = parse_percent(bucket.get("percent"))
        except ValueError as exc:
            problems.append("%s.percent: %s" % (spot, exc))
        else:
            if percent is None:
                if rest is not None:
                    problems.append("%s.percent: only one bucket can take the rest ('*' or no percent); buckets[%d] "
                                    "already does" % (spot, rest))
                rest = index
            else:
                total += percent
        problem = text_problem(bucket.get("value"), complex_value=True)
        if problem:
            problems.append("%s.value: %s" % (spot, problem))
    if total > 100:
        problems.append("%s.buckets: the percentages add up to %s, more than 100" % (where, _format_percent(total)))


def check_routing(upstreams=None, maps=None, split_clients=None) -> list[str]:
    """Every problem in the input, each naming its option path; empty when it can be rendered."""
    problems: list[str] = []
    names: dict[str, str] = {}
    for index, upstream in _items(upstreams, "upstreams", problems):
        where = "upstreams[%d]" % index
        _check_upstream(where, upstream, problems)
        name = upstream.get("name")
        if isinstance(name, str) and name in names:
            problems.append("%s.name: upstream %r is already defined by %s" % (where, name, names[name]))
        elif isinstance(name, str):
            names[name] = where
    defined: dict[str, str] = {}
    for index, block in _items(maps, "maps", problems):
        _check_map("maps[%d]" % index, block, defined, problems)
    for index, block in _items(split_clients, "split_clients", problems):
        _check_split("split_clients[%d]" % index, block, defined, problems)
    return problems


# --- rendering (pure) --------------------------------------------------------

def _token(value: str) -> str:
    """``value`` as one nginx token: bare when that is unambiguous, else double-quoted."""
    if BARE_TOKEN_RE.match(value):
        return value
    return '"%s"' % value


def _format_percent(percent: Decimal) -> str:
    return format(percent.normalize(), "f")


def _render_upstream(upstream: dict) -> list[str]:
    lines = ["upstream %s {" % upstream["name"]]
    method = upstream.get("method") or "round_robin"
    if method == "hash":
        lines.append("    hash %s;" % _token(upstream["hash_key"]))
    elif method != "round_robin":
        lines.append("    %s;" % method)
    for server in upstream["servers"]:
        parts = ["server", server["address"]]
        if server.get("weight") is not None:
            parts.append("weight=%d" % server["weight"])
        if server.get("max_fails") is not None:
            parts.append("max_fails=%d" % server["max_fails"])
        if server.get("fail_timeout") is not None:
            parts.append("fail_timeout=%ds" % server["fail_timeout"])
        if server.get("backup"):
            parts.append("backup")
        if server.get("down"):
            parts.append("down")
        lines.append("    %s;" % " ".join(parts))
    if upstream.get("keepalive") is not None:
        lines.append("    keepalive %d;" % upstream["keepalive"])
    lines.append("}")
    return lines


def _render_map(block: dict) -> list[str]:
    lines = ["map %s %s {" % (_token(block["source"]), block["variable"])]
    if block.get("default") is not None:
        lines.append("    default %s;" % _token(block["default"]))
    for entry in block.get("entries") or []:
        lines.append("    %s %s;" % (_token(entry["key"]), _token(entry["value"])))
    lines.append("}")
    return lines


def _render_split(block: dict) -> list[str]:
    lines = ["split_clients %s %s {" % (_token(block["key"]), block["variable"])]
    rest = None
    for bucket in block["buckets"]:
        percent = parse_percent(bucket.get("percent"))
        if percent is None:
            rest = bucket
        else:
            lines.append("    %s%% %s;" % (_format_percent(percent), _token(bucket["value"])))
    if rest is not None:
        # nginx gives "*" what is left only when it comes last.
        lines.append("    * %s;" % _token(rest["value"]))
    lines.append("}")
    return lines


def render(upstreams=None, maps=None, split_clients=None) -> str:
    """The include file for checked input (see ``check_routing``): same input, same bytes.

    Upstreams first, then maps, then split_clients, each in the order given.
    """
    blocks = [_render_upstream(item) for item in upstreams or []]
    blocks += [_render_map(item) for item in maps or []]
    blocks += [_render_split(item) for item in split_clients or []]
    return HEADER + "".join("\n" + "\n".join(lines) + "\n" for lines in blocks)


# --- nginx processes ----------------------------------------------------------

def nginx_argv(binary: str, config: str, prefix: str | None, *args: str) -> list[str]:
    argv = [binary]
    if prefix:
        argv += ["-p", prefix]
    return argv + ["-c", config] + list(args)


def resolve_binary(name: str) -> str | None:
    """Path of the nginx executable; looks in the sbin directories too (often missing from PATH)."""
    if os.sep in name:
        return name if os.path.isfile(name) and os.access(name, os.X_OK) else None
    dirs = os.environ.get("PATH", "").split(os.pathsep) + ["/usr/local/sbin", "/usr/sbin", "/sbin"]
    return shutil.which(name, path=os.pathsep.join(d for d in dirs if d))


def run_nginx(argv: list[str], timeout: float = COMMAND_TIMEOUT) -> tuple[int, str]:
    """(exit code, stdout and stderr together) of one nginx command; never raises for a failed run."""
    try:
        done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout,
                              check=False)
    except OSError as exc:
        return 127, "cannot run %s: %s" % (argv[0], exc)
    except subprocess.TimeoutExpired:
        return 124, "%s did not finish within %ss" % (" ".join(argv), timeout)
    return done.returncode, done.stdout.strip()


def _stat(pid: int) -> tuple[str, int] | None:
    """(state letter, parent PID) from /proc, or None when the process is gone."""
    try:
        with open("/proc/%d/stat" % pid, encoding="utf-8", errors="replace") as handle:
            data = handle.read()
    except OSError:
        return None
    fields = data[data.rfind(")") + 2:].split()
    if len(fields) < 2:
        return None
    return fields[0], int(fields[1])


def _cmdline(pid: int) -> str:
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def read_master_pid(pid_file: str) -> int | None:
    """PID of the running nginx master named by ``pid_file``; None when nginx is not running."""
    try:
        text = read_text(pid_file)
    except OSError:
        return None
    if not text or not text.strip().isdigit():
        return None
    pid = int(text.strip())
    if not _alive(pid) or not _cmdline(pid).startswith("nginx: master process"):
        return None
    return pid


def worker_pids(master: int) -> set[int]:
    """Live worker processes of ``master``, including old ones that are shutting down."""
    pids = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        stat = _stat(pid)
        if stat is None or stat[1] != master or stat[0] in ("Z", "X"):
            continue
        if _cmdline(pid).startswith("nginx: worker process"):
            pids.add(pid)
    return pids


def still_running(master: int, pids: set[int]) -> set[int]:
    """Those of ``pids`` that are still live workers of ``master``."""
    return {pid for pid in pids if _alive(pid) and (_stat(pid) or ("", 0))[1] == master}


def wait_new_generation(master: int, old: set[int], timeout: float, poll_interval: float = POLL_INTERVAL) -> bool:
    """True once the reload took effect: ``master`` has a worker that is not in ``old``, and every old
    worker has either exited or stopped taking new connections (it renames itself "... is shutting down"
    right before it closes its listening sockets).
    """
    deadline = time.monotonic() + timeout
    while True:
        if worker_pids(master) - old and all(_cmdline(pid).startswith(SHUTTING_DOWN) for pid in still_running(master, old)):
            return True
        if time.monotonic() >= deadline or not _alive(master):
            return False
        time.sleep(poll_interval)


def shutting_down(master: int) -> set[int]:
    """Workers of ``master`` left from an earlier reload, still finishing their requests."""
    return {pid for pid in worker_pids(master) if _cmdline(pid).startswith(SHUTTING_DOWN)}


def _socket_inodes(pid: int) -> set[str]:
    """Inodes of the sockets ``pid`` holds; PermissionError when /proc does not show them (root without
    CAP_SYS_PTRACE, as in some containers)."""
    inodes = set()
    try:
        entries = os.listdir("/proc/%d/fd" % pid)
    except FileNotFoundError:
        return inodes
    for entry in entries:
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, entry))
        except FileNotFoundError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    return inodes


def _endpoint(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int) -> str:
    """'10.0.0.1:8080', '[::1]:8080': how both /proc and the resolved upstream addresses are keyed."""
    return ("[%s]:%d" if ip.version == 6 else "%s:%d") % (ip, port)


def _proc_net_address(hex_address: str) -> str:
    """'0100007F:1F90' (/proc/net/tcp) -> '127.0.0.1:8080'; IPv6 as '[::1]:8080'."""
    host, port = hex_address.split(":")
    raw = bytes.fromhex(host)
    # The kernel prints each 32-bit word in host (little-endian) order.
    raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    ip = ipaddress.ip_address(raw)
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return _endpoint(ip, int(port, 16))


def upstream_connections(pids: set[int], servers: dict[str, str]) -> dict[str, int] | None:
    """Open TCP connections of the worker processes ``pids`` to each upstream server; None when /proc
    does not show the workers' sockets.

    ``servers`` maps "ip:port" to the name to count under (the address as the
    configuration gives it). nginx has no runtime API: this is what its old
    workers still hold, read from /proc, so a drain can say what is left.
    """
    counts = {name: 0 for name in servers.values()}
    inodes: set[str] = set()
    try:
        for pid in pids:
            inodes |= _socket_inodes(pid)
    except PermissionError:
        return None
    if not inodes or not pids:
        return counts
    some = next(iter(pids))
    for table in ("tcp", "tcp6"):
        try:
            with open("/proc/%d/net/%s" % (some, table), encoding="ascii") as handle:
                lines = handle.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            # fields: sl local remote state ... uid timeout inode; state 0A is LISTEN
            if len(fields) < 10 or fields[9] not in inodes or fields[3] == "0A":
                continue
            name = servers.get(_proc_net_address(fields[2]))
            if name is not None:
                counts[name] += 1
    return counts


def resolve_servers(addresses: list[str]) -> dict[str, str]:
    """{"ip:port": address} for upstream server addresses ("host:port", "ip:port", "[v6]:port", "unix:...")."""
    resolved = {}
    for address in addresses:
        if address.startswith("unix:"):
            continue
        host, port = address.rpartition(":")[::2]
        if not host or not port.isdigit():
            host, port = address, "80"
        host = host.strip("[]")
        try:
            infos = socket.getaddrinfo(host, int(port), proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError):
            continue
        for info in infos:
            resolved[_endpoint(ipaddress.ip_address(info[4][0].split("%")[0]), int(port))] = address
    return resolved


def wait_exited(master: int, old: set[int], timeout: float, poll_interval: float = POLL_INTERVAL) -> set[int]:
    """Wait until the ``old`` workers have exited; returns those still running at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        left = still_running(master, old)
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(poll_interval)


# --- applying ------------------------------------------------------------------

def _put(path: str, content: str | None) -> None:
    """Make ``path`` hold ``content``; None removes it."""
    if content is None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    else:
        write_atomic(path, content, mode=0o644)


def _reload(argv: list[str], master: int, old: set[int], timeout: float) -> str | None:
    """Reload and confirm a new worker generation; the reason when it did not happen, else None."""
    code, output = run_nginx(argv)
    if code != 0:
        return "nginx -s reload failed (exit %d): %s" % (code, output)
    if not wait_new_generation(master, old, timeout):
        return ("nginx started no new worker process within %ss after the reload (the master refused the new "
                "configuration; see nginx's error log)" % timeout)
    return None


@contextlib.contextmanager
def _applying(config: str):
    """Hold an exclusive lock on nginx's main configuration file (an advisory flock: nginx itself does not
    see it) while one apply writes, validates and reloads."""
    try:
        handle = open(config, "rb")  # pylint: disable=consider-using-with
    except OSError:
        # No main file to lock: nginx -t fails on it anyway, and says why.
        yield
        return
    with handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def apply(path: str, content: str | None, binary: str = "nginx", config: str = "/etc/nginx/nginx.conf",
          prefix: str | None = None, pid_file: str = "/run/nginx.pid", validate: bool = True, reload: bool = True,
          wait_workers: bool = False, worker_timeout: float = 60.0, on_timeout: str = "fail",
          servers: list[str] | None = None, check_mode: bool = False,
          reload_timeout: float = RELOAD_CONFIRM_TIMEOUT) -> dict:
    """Bring ``path`` to ``content`` (None: remove it) and make nginx use it; the module's whole job.

    Unchanged content runs no nginx command; with ``wait_workers`` it waits
    for the workers an earlier reload left shutting down, so a drain can be
    started by one call and waited for, in rounds, by the next ones.
    ``servers`` (upstream addresses) are what ``connections_left`` counts.
    Raises NginxApplyError with the result to return; when validation or the
    reload fails the previous file is back in place (and nginx reloaded with
    it) before the error is raised.
    """
    before = read_text(path)
    result = {
        "changed": before != content,
        "path": path,
        "reloaded": False,
        "old_workers": 0,
        "workers_exited_seconds": None,
        "workers_left": None,
        "connections_left": None,
        "applied_at": None,
        "warnings": [],
        "diff": {"before": before or "", "after": content or "", "before_header": path, "after_header": path},
    }
    if check_mode:
        return result
    if not result["changed"]:
        master = read_master_pid(pid_file) if wait_workers and reload else None
        if master is not None:
            old = shutting_down(master)
            result["old_workers"] = len(old)
            _wait_old_workers(result, master, old, time.monotonic(), worker_timeout, on_timeout, servers or [],
                              "of waiting")
        return result
    unchanged = dict(result, changed=False)

    nginx = binary
    if validate or reload:
        nginx = resolve_binary(binary)
        if nginx is None:
            raise NginxApplyError("nginx_binary: cannot find an executable %r (looked in PATH and the sbin "
                                  "directories); nothing was changed" % binary, unchanged)
    if content is not None and not os.path.isdir(os.path.dirname(path)):
        raise NginxApplyError("path: the directory %s does not exist; nothing was changed"
                              % os.path.dirname(path), unchanged)

    # One write-validate-reload at a time per nginx: nginx -t reads every included file, so another
    # service's apply in between would test (and reload) this file before it was checked, or fail on it.
    with _applying(config):
        _put(path, content)
        if validate:
            code, output = run_nginx(nginx_argv(nginx, config, prefix, "-t"))
            if code != 0:
                _put(path, before)
                raise NginxApplyError("nginx -t rejected the configuration with the new %s, so the previous file was "
                                      "restored and nginx keeps serving with it: %s" % (path, output), unchanged)
        if not reload:
            return result

        master = read_master_pid(pid_file)
        if master is None:
            result["warnings"].append("nginx is not running (no live master process in %s): %s is in place and nginx "
                                      "loads it when it starts; nothing was reloaded" % (pid_file, path))
            return result
        old = worker_pids(master)
        result["old_workers"] = len(old)
        reload_argv = nginx_argv(nginx, config, prefix, "-s", "reload")
        started = time.monotonic()
        applied_at = time.time()
        problem = _reload(reload_argv, master, old, reload_timeout)
        if problem:
            _put(path, before)
            again = _reload(reload_argv, master, worker_pids(master), reload_timeout)
            rollback = "nginx was reloaded with it" if again is None else "reloading it failed too: %s" % again
            raise NginxApplyError("%s. The previous %s was restored and %s." % (problem, path, rollback), unchanged)
        result["reloaded"] = True
        result["applied_at"] = applied_at

    if wait_workers:
        _wait_old_workers(result, master, old, started, worker_timeout, on_timeout, servers or [], "after the reload")
    return result


def _wait_old_workers(result: dict, master: int, old: set[int], started: float, timeout: float, on_timeout: str,
                      servers: list[str], since: str) -> None:
    left = wait_exited(master, old, timeout)
    result["workers_left"] = len(left)
    result["connections_left"] = (upstream_connections(left, resolve_servers(servers)) if left
                                  else {address: 0 for address in servers})
    if not left:
        result["workers_exited_seconds"] = round(time.monotonic() - started, 3)
    elif on_timeout == "fail":
        raise NginxApplyError(
            "%d of %d old nginx worker processes still running %ss %s (they are finishing requests in flight); the "
            "new configuration is active. Raise worker_timeout, or bound the drain with nginx's "
            "worker_shutdown_timeout." % (len(left), len(old), timeout, since), result)
