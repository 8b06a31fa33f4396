"""The release role's input checks (one filter call per host instead of one assert per variable)."""

from __future__ import annotations

import pytest

from ansible_collections.fleet.rollout.plugins.filter.release_input import release_input_problems

GOOD = {
    "release_service": "sample-app", "release_version": "2.0.0", "release_slot": "",
    "release_artifact": "/srv/sample-app-2.0.0.tar.gz", "release_artifact_url": "",
    "release_sha256": "ab" * 32, "release_root": "/opt/sample-app", "release_command": "python3 app.py",
    "release_health_url": "http://127.0.0.1:8080/healthz", "release_strip_components": 0, "release_keep": 5,
    "release_history_size": 20, "release_health_successes": 3, "release_health_timeout": 60,
    "release_health_interval": 1, "release_stop_timeout": 35, "release_environment": {"PORT": "8080", "DEBUG": 1},
    "release_shared_dirs": ["data"], "release_user": "sample-app", "release_group": "sample-app",
    "release_hooks": {"before_activate": ["hooks/migrate.yml"]}, "release_unit_options": {"LimitNOFILE": 4096},
    "release_rollback": False,
}


def problems(**changes):
    return release_input_problems(dict(GOOD, **changes))


def test_good_input_has_no_problem():
    assert problems() == []
    assert problems(release_slot="blue", release_artifact="", release_artifact_url="https://example.com/a.tgz") == []
    # A rollback needs neither a version nor an artifact.
    assert problems(release_rollback="yes", release_version=None, release_artifact="", release_sha256="") == []


@pytest.mark.parametrize("changes, message", [
    ({"release_service": "../etc"}, 'release_service must be a safe name (letters, digits, \'.\', \'_\', \'-\'; not '
                                    'starting with \'.\' or \'-\'; at most 64 characters), got "../etc"'),
    ({"release_service": "a" * 65}, "at most 64 characters"),
    ({"release_version": "../x"}, 'and is required unless release_rollback is true, got "../x"'),
    ({"release_version": ""}, "release_version must be a safe name"),
    # A trailing newline passes a regex that ends in $ (it matches before a final newline).
    ({"release_version": "2.0.0\n"}, "release_version must be a safe name"),
    ({"release_service": "shop\n"}, "release_service must be a safe name"),
    # YAML reads an unquoted 2.10 as the number 2.1: refused, never deployed as 2.1.
    ({"release_version": 2.10}, 'release_version: got the number 2.1, not a version; quote it (release_version: "2.10")'),
    ({"release_sha256": "ab" * 32 + "\n"}, "release_sha256 must be"),
    ({"release_root": "/opt/app\n"}, "release_root must be"),
    ({"release_slot": "main"}, "'main' is reserved"),
    ({"release_artifact_url": "https://x/a.tgz"}, "give exactly one of release_artifact"),
    ({"release_artifact": ""}, "give exactly one of release_artifact"),
    ({"release_artifact": "", "release_artifact_url": "ftp://x/a.tgz"}, "must start with http:// or https://"),
    ({"release_sha256": "abc"}, 'release_sha256 must be the artifact\'s sha256 as 64 hex digits (required to '
                                'deploy), got "abc"'),
    ({"release_sha256": ""}, "release_sha256 must be"),
    ({"release_root": "/"}, "release_root must be an absolute path other than /"),
    ({"release_root": "/opt/../etc"}, "release_root must be"),
    ({"release_root": "opt/app"}, "release_root must be"),
    ({"release_command": "run\nrm -rf /"}, "release_command must be the service's command line"),
    ({"release_command": "  "}, "release_command must be"),
    ({"release_health_url": "127.0.0.1:8080"}, "release_health_url must be an http:// or https:// URL"),
    ({"release_keep": 0}, "release_keep must be >= 1, got 0"),
    ({"release_keep": "many"}, 'release_keep must be >= 1, got "many"'),
    ({"release_strip_components": -1}, "release_strip_components must be >= 0, got -1"),
    ({"release_health_timeout": "0"}, 'release_health_timeout must be > 0, got "0"'),
    ({"release_health_interval": 0.0}, "release_health_interval must be > 0"),
    ({"release_stop_timeout": 0}, "release_stop_timeout must be >= 1"),
    ({"release_history_size": 0}, "release_history_size must be >= 1"),
    ({"release_health_successes": 0}, "release_health_successes must be >= 1"),
    ({"release_environment": {"1BAD": "x", "OK": "a\nb", "LIST": [1]}},
     'bad names: ["1BAD"], names with a multi-line or non-scalar value: ["LIST", "OK"]'),
    ({"release_environment": "PORT=8080"}, "release_environment must map variable names"),
    ({"release_shared_dirs": "data"}, "release_shared_dirs must list safe directory names"),
    ({"release_shared_dirs": ["a/b"]}, "release_shared_dirs must list"),
    ({"release_shared_dirs": [".release-sha256"]}, "release_shared_dirs must list"),
    ({"release_user": "bad user"}, "release_user must be an account name"),
    ({"release_group": "g" * 33}, "release_group must be an account name"),
    ({"release_hooks": {"before_deploy": ["x.yml"]}}, "release_hooks must map some of before_install"),
    ({"release_hooks": {"before_install": "x.yml"}}, "release_hooks must map"),
    ({"release_hooks": {"before_install": [1]}}, "release_hooks must map"),
    ({"release_unit_options": {"Exec-Start": "x"}}, "release_unit_options must map [Service] directives"),
    ({"release_unit_options": {"ExecStartPre": "a\nb"}}, "release_unit_options must map"),
])
def test_each_problem_names_its_variable(changes, message):
    found = problems(**changes)
    assert len(found) == 1, found
    assert message in found[0]


def test_every_problem_at_once():
    found = problems(release_service="", release_root="/", release_keep=0, release_hooks=[])
    assert [p.split(" ")[0] for p in found] == ["release_service", "release_root", "release_keep", "release_hooks"]


def test_missing_variables_count_as_unset():
    found = release_input_problems({})
    assert "release_service must be" in found[0]
    assert any(p.startswith("release_command must be") for p in found)
    assert release_input_problems(None) == ["the release input must be a mapping of the release_* variables, got null"]
