# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Client for the HAProxy runtime API (the admin "stats socket").

One connection per command: the socket answers a command and closes, so the
output of one command can never be mistaken for another's. Commands that
change state (``set ...``, ``add map``, ``commit map``, ``shutdown ...``)
print nothing when they succeed; any output from them is an error message
and raises :class:`HAProxyCommandError`.
"""

from __future__ import annotations

import os
import socket


class HAProxyRuntimeError(Exception):
    """The runtime API could not be reached or answered nonsense."""


class HAProxyCommandError(HAProxyRuntimeError):
    """HAProxy refused a command; the message is HAProxy's own."""

    def __init__(self, command: str, output: str):
        super().__init__("HAProxy refused '%s': %s" % (command, output.strip()))
        self.command = command
        self.output = output


def parse_socket(spec: str) -> tuple[int, str | tuple[str, int]]:
    """``/run/haproxy/admin.sock`` or ``tcp://host:port`` → (family, address)."""
    if spec.startswith("tcp://"):
        hostport = spec[len("tcp://"):]
        host, sep, port = hostport.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise HAProxyRuntimeError("socket '%s': expected tcp://host:port" % spec)
        return socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET, (host.strip("[]"), int(port))
    if spec.startswith("unix://"):
        spec = spec[len("unix://"):]
    if not spec.startswith("/"):
        raise HAProxyRuntimeError("socket '%s': expected an absolute unix socket path or tcp://host:port" % spec)
    return socket.AF_UNIX, spec


class RuntimeClient:
    def __init__(self, spec: str, timeout: float = 10.0):
        self.spec = spec
        self.family, self.address = parse_socket(spec)
        self.timeout = timeout

    def check(self) -> None:
        """Fail early, with a message that says what to fix, when the socket is unusable."""
        # A refused or unreachable TCP socket surfaces on the first command,
        # with its address; no extra round trip just to test it.
        if self.family == socket.AF_UNIX and not os.path.exists(self.address):
            raise HAProxyRuntimeError(
                "HAProxy runtime socket %s does not exist: is HAProxy running, and does its "
                "global section have 'stats socket %s level admin'?" % (self.address, self.address)
            )

    def execute(self, command: str, payload: list[str] | None = None) -> str:
        """Send one command, return all it printed.

        ``payload`` lines follow the command in HAProxy's ``<<`` syntax (one
        connection for a whole map instead of one per entry).
        """
        if "\n" in command or "\r" in command:
            raise HAProxyRuntimeError("refusing a command with a line break: %r" % command)
        request = command
        if payload is not None:
            for line in payload:
                if not line.strip() or "\n" in line or "\r" in line:
                    raise HAProxyRuntimeError("refusing an empty or multi-line payload line: %r" % line)
            request = command + " <<\n" + "\n".join(payload) + "\n"
        sock = socket.socket(self.family, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            try:
                sock.connect(self.address)
            except OSError as exc:
                raise HAProxyRuntimeError("cannot connect to HAProxy runtime socket %s: %s" % (self.spec, exc)) from exc
            sock.sendall(request.encode() + b"\n")
            chunks = []
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                chunks.append(data)
        except socket.timeout as exc:
            raise HAProxyRuntimeError("HAProxy runtime socket %s: no answer to '%s' within %ss"
                                      % (self.spec, command, self.timeout)) from exc
        finally:
            sock.close()
        output = b"".join(chunks).decode("utf-8", "replace")
        if output.startswith("Permission denied") or output.startswith("Unknown command"):
            raise HAProxyCommandError(command, output)
        return output

    def run_set(self, command: str, payload: list[str] | None = None) -> None:
        """A state-changing command: silence is success, any output is an error."""
        output = self.execute(command, payload)
        if output.strip():
            raise HAProxyCommandError(command, output)

    # --- readers ---------------------------------------------------------
    def show_stat(self) -> list[dict]:
        return parse_csv_stat(self.execute("show stat"))

    def show_servers_state(self, backend: str | None = None) -> list[dict]:
        return parse_servers_state(self.execute("show servers state" + (" " + backend if backend else "")))

    def show_servers_state_raw(self) -> str:
        return self.execute("show servers state")

    def show_info(self) -> dict[str, str]:
        return parse_info(self.execute("show info"))

    def show_map(self, map_ref: str) -> list[tuple[str, str]]:
        output = self.execute("show map " + map_ref)
        if output.startswith("Unknown map identifier"):
            raise HAProxyCommandError("show map " + map_ref, output)
        return parse_map_dump(output)


def parse_csv_stat(text: str) -> list[dict]:
    """Parse ``show stat`` CSV by its header line, never by column position."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].startswith("# "):
        raise HAProxyRuntimeError("unexpected 'show stat' output: %r" % text[:200])
    header = lines[0][2:].split(",")
    rows = []
    for line in lines[1:]:
        values = line.split(",")
        rows.append({name: values[i] if i < len(values) else "" for i, name in enumerate(header) if name})
    return rows


def parse_info(text: str) -> dict[str, str]:
    """Parse ``show info``: one ``Name: value`` per line."""
    info = {}
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip():
            info[name.strip()] = value.strip()
    if not info:
        raise HAProxyRuntimeError("unexpected 'show info' output: %r" % text[:200])
    return info


def parse_servers_state(text: str) -> list[dict]:
    """Parse ``show servers state``: a version line, a ``# field ...`` header, rows."""
    lines = [line for line in text.splitlines() if line.strip()]
    header = None
    rows = []
    for line in lines:
        if line.startswith("# "):
            header = line[2:].split()
            continue
        if header is None:
            continue  # the format version line
        values = line.split()
        rows.append(dict(zip(header, values)))
    if header is None:
        raise HAProxyRuntimeError("unexpected 'show servers state' output: %r" % text[:200])
    return rows


def parse_map_dump(text: str) -> list[tuple[str, str]]:
    """``show map`` lines are ``<ref-id> <key> <value>``; keep their order."""
    entries = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.split(None, 2)
        if len(parts) < 2:
            raise HAProxyRuntimeError("unexpected 'show map' line: %r" % line)
        entries.append((parts[1], parts[2] if len(parts) == 3 else ""))
    return entries
