# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks of the release role's input, run on each host before anything changes.

One filter call instead of one assert per variable: a task header costs a
round of the play on every host (~0.1 s each, fourteen of them per host and
entry point before), and the user sees every problem at once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

# A directory name, never a path (rollout_version follows the same rule).
SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*\Z")
URL = re.compile(r"^https?://[^/\s]+")
ACCOUNT = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*\Z")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
UNIT_DIRECTIVE = re.compile(r"^[A-Za-z][A-Za-z0-9]*\Z")
SHA256 = re.compile(r"^[0-9a-fA-F]{64}\Z")
ROOT = re.compile(r"^/[^\s]*[^/\s]\Z")
HOOK_POINTS = ("before_install", "after_install", "before_activate", "after_activate")
MARKER = ".release-sha256"


def _json(value) -> str:
    return json.dumps(value, default=str)


def _flag(value) -> bool:
    """Ansible's ``bool`` filter."""
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    return str(value).strip().lower() in ("yes", "on", "1", "true")


def _number(value, kind):
    """Jinja's ``int`` / ``float`` filters: what does not convert is 0."""
    try:
        return kind(value)
    except (TypeError, ValueError):
        try:
            return kind(float(value))
        except (TypeError, ValueError):
            return kind(0)


def _text(value) -> str:
    """``value | default('', true) | string``."""
    return str(value) if value else ""


def _one_line(value) -> bool:
    return not re.search(r"[\r\n]", str(value))


def _is_list(value) -> bool:
    return isinstance(value, (list, tuple))


def _scalar(value) -> bool:
    return isinstance(value, (str, int, float, bool))


def float_version_problem(name: str, version: float) -> str:
    """A version YAML read as a number: 2.10 arrives as 2.1, so it cannot be taken as the version meant."""
    return ("%s: got the number %r, not a version; quote it (%s: \"2.10\"): YAML reads an unquoted 2.10 as the "
            "number 2.1" % (name, version, name))


def _name_problems(got: dict, rollback: bool) -> list[str]:
    problems = []
    service = got.get("release_service")
    if not (isinstance(service, str) and SAFE_NAME.match(service) and len(service) <= 64):
        problems.append("release_service must be a safe name (letters, digits, '.', '_', '-'; not starting with '.' "
                        "or '-'; at most 64 characters), got %s" % _json(service))
    version = _text(got.get("release_version"))
    if isinstance(got.get("release_version"), float):
        problems.append(float_version_problem("release_version", got["release_version"]))
    elif not (version or rollback) or (version and not SAFE_NAME.match(version)) or len(version) > 128:
        problems.append("release_version must be a safe name (letters, digits, '.', '_', '-'; not starting with '.' "
                        "or '-'; no '/'), %sgot %s" % ("" if rollback else "and is required unless release_rollback "
                                                       "is true, ", _json(got.get("release_version") or "")))
    slot = _text(got.get("release_slot"))
    if slot and (not SAFE_NAME.match(slot) or slot == "main"):
        problems.append("release_slot must be a safe name such as blue or green (letters, digits, '.', '_', '-'; not "
                        "starting with '.' or '-'); 'main' is reserved for the install without slot; got %s"
                        % _json(got.get("release_slot") or ""))
    return problems


def _artifact_problems(got: dict, rollback: bool) -> list[str]:
    problems = []
    artifact, url = got.get("release_artifact") or "", got.get("release_artifact_url") or ""
    sources = [source for source in (artifact, url) if source]
    if not (rollback or len(sources) == 1) or (url and not URL.match(str(url))):
        problems.append("give exactly one of release_artifact (a tarball on the controller) or release_artifact_url "
                        "(an http:// or https:// URL) - release_artifact_url must start with http:// or https:// and "
                        "name a host; got release_artifact=%s, release_artifact_url=%s" % (_json(artifact), _json(url)))
    sha256 = got.get("release_sha256") or ""
    if not (rollback or sha256) or (sha256 and not SHA256.match(str(sha256))):
        problems.append("release_sha256 must be the artifact's sha256 as 64 hex digits%s, got %s"
                        % ("" if rollback else " (required to deploy)", _json(sha256)))
    return problems


def _service_problems(got: dict) -> list[str]:
    problems = []
    root = got.get("release_root")
    if not (isinstance(root, str) and ROOT.match(root) and not re.search(r"/\.\.?/", "/" + root + "/")):
        problems.append("release_root must be an absolute path other than / without '.' or '..' parts, got %s"
                        % _json(root))
    command = got.get("release_command")
    if not (isinstance(command, str) and command.strip() and _one_line(command)):
        problems.append("release_command must be the service's command line (the unit's ExecStart, run in the "
                        "release directory), on one line, got %s" % _json(command or ""))
    health = got.get("release_health_url")
    if not (isinstance(health, str) and URL.match(health)):
        problems.append("release_health_url must be an http:// or https:// URL, got %s" % _json(health or ""))
    limits = (("release_strip_components", int, 0, ">= 0"), ("release_keep", int, 1, ">= 1"),
              ("release_history_size", int, 1, ">= 1"), ("release_health_successes", int, 1, ">= 1"),
              ("release_health_timeout", float, None, "> 0"), ("release_health_interval", float, None, "> 0"),
              ("release_stop_timeout", int, 1, ">= 1"))
    for name, kind, least, expected in limits:
        value = _number(got.get(name), kind)
        if (value <= 0) if least is None else (value < least):
            problems.append("%s must be %s, got %s" % (name, expected, _json(got.get(name))))
    for name in ("release_user", "release_group"):
        value = got.get(name)
        if not (isinstance(value, str) and ACCOUNT.match(value) and len(value) <= 32):
            problems.append("%s must be an account name (letters, digits, '_', '.', '-'; at most 32 characters), "
                            "got %s" % (name, _json(value)))
    return problems


def _environment_problems(environment) -> list[str]:
    if not isinstance(environment, Mapping):
        return ["release_environment must map variable names ([A-Za-z_][A-Za-z0-9_]*) to one-line values, got %s"
                % _json(environment)]
    bad_keys = [str(key) for key in environment if not ENV_NAME.match(str(key))]
    bad_values = ([str(key) for key, value in environment.items() if not _scalar(value)]
                  + [str(key) for key, value in environment.items() if isinstance(value, str) and not _one_line(value)])
    if not bad_keys and not bad_values:
        return []
    return ["release_environment must map variable names ([A-Za-z_][A-Za-z0-9_]*) to one-line values; bad names: "
            "%s, names with a multi-line or non-scalar value: %s" % (_json(bad_keys), _json(bad_values))]


def _layout_problems(got: dict) -> list[str]:
    problems = []
    dirs = got.get("release_shared_dirs")
    if not _is_list(dirs) or [d for d in dirs if not SAFE_NAME.match(str(d)) or d == MARKER]:
        problems.append("release_shared_dirs must list safe directory names (letters, digits, '.', '_', '-'; no "
                        "'/'), got %s" % _json(dirs))
    hooks = got.get("release_hooks")
    if not (isinstance(hooks, Mapping) and set(hooks) <= set(HOOK_POINTS)
            and all(_is_list(files) and all(isinstance(f, str) for f in files) for files in hooks.values())):
        problems.append("release_hooks must map some of %s to lists of task files, got %s"
                        % (", ".join(HOOK_POINTS), _json(hooks)))
    options = got.get("release_unit_options")
    if not (isinstance(options, Mapping) and all(UNIT_DIRECTIVE.match(str(key)) for key in options)
            and all(_one_line(value) for value in options.values())):
        problems.append("release_unit_options must map [Service] directives (such as LimitNOFILE) to one-line "
                        "values, got %s" % _json(options))
    return problems


def release_input_problems(got) -> list[str]:
    """Every problem with the release role's input (a mapping of its variables), one message per variable."""
    if not isinstance(got, Mapping):
        return ["the release input must be a mapping of the release_* variables, got %s" % _json(got)]
    rollback = _flag(got.get("release_rollback"))
    return (_name_problems(got, rollback) + _artifact_problems(got, rollback) + _service_problems(got)
            + _environment_problems(got.get("release_environment")) + _layout_problems(got))


class FilterModule:
    def filters(self):
        return {"release_input_problems": release_input_problems}
