"""The project's own check scripts, on tarballs and reports they must reject."""

from __future__ import annotations

import io
import json
import tarfile


def make_tarball(path, names, version="0.1.0"):
    with tarfile.open(path, "w:gz") as tar:
        for name in names:
            data = json.dumps({"collection_info": {"version": version}}).encode() if name == "MANIFEST.json" else b"x\n"
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_tarball_with_tests_or_molecule_is_rejected(tarball_check, tmp_path):
    good = ["MANIFEST.json", "FILES.json", "meta/runtime.yml", "README.md", "LICENSE", "plugins/modules/x.py"]
    make_tarball(tmp_path / "good.tar.gz", good)
    assert tarball_check.check(str(tmp_path / "good.tar.gz")) == []
    make_tarball(tmp_path / "bad.tar.gz", good[1:] + ["tests/unit/test_x.py", "molecule/smoke/molecule.yml"])
    problems = tarball_check.check(str(tmp_path / "bad.tar.gz"))
    assert "missing MANIFEST.json" in problems
    assert "must not ship tests/unit/test_x.py" in problems
    assert "must not ship molecule/smoke/molecule.yml" in problems


def test_shipped_docs_linking_to_files_the_tarball_does_not_ship_are_rejected(tarball_check):
    names = {"README.md", "docs/a.md", "docs/images/x.png", "plugins/modules/m.py"}
    docs = {"README.md": "[a](docs/a.md) [web](https://x.org/y) [here](#top) [img](docs/images/x.png) [dir](docs/)",
            "docs/a.md": "[up](../README.md#install) [lab](../molecule/x.yml) [m](../plugins/modules/m.py)"}
    assert tarball_check.broken_links(docs, names) == [("docs/a.md", "../molecule/x.yml")]


def test_tarball_of_another_version_than_galaxy_yml_or_missing_is_rejected(tarball_check, tmp_path):
    names = ["MANIFEST.json", "FILES.json", "meta/runtime.yml", "README.md", "LICENSE"]
    make_tarball(tmp_path / "c.tar.gz", names, version="0.1.0")
    assert tarball_check.check(str(tmp_path / "c.tar.gz"), "0.1.0") == []
    assert tarball_check.check(str(tmp_path / "c.tar.gz"), "0.2.0") == [
        "is version 0.1.0, galaxy.yml says 0.2.0: run make collection-build"]
    assert tarball_check.check(str(tmp_path / "absent.tar.gz"), "0.1.0")[0].startswith("cannot be read")
    assert tarball_check.main([str(tmp_path / "absent.tar.gz"), "--version", "0.1.0"]) == 1


def write_report(path, tests, failures=0, skipped=0):
    path.write_text('<testsuites><testsuite tests="%d" failures="%d" errors="0" skipped="%d"/></testsuites>'
                    % (tests, failures, skipped))
    return str(path)


def test_junit_summary_fails_on_no_tests_failures_and_missing_reports(junit_summary, tmp_path, capsys):
    ok = write_report(tmp_path / "ok.xml", 10, skipped=1)
    assert junit_summary.main([ok]) == 0
    assert capsys.readouterr().out.strip() == "tests: 9 passed, 0 failed, 1 skipped"
    assert junit_summary.main([write_report(tmp_path / "empty.xml", 0)]) == 1
    assert junit_summary.main([ok, write_report(tmp_path / "bad.xml", 3, failures=1)]) == 1
    assert junit_summary.main([ok, str(tmp_path / "missing.xml")]) == 1


def test_junit_summary_lists_each_failed_test_with_its_message_and_traceback_end(junit_summary, tmp_path, capsys):
    report = tmp_path / "molecule-faults.xml"
    report.write_text(
        '<testsuites><testsuite tests="3" failures="1" errors="1" skipped="0">'
        '<testcase classname="tests.test_capacity" name="test_ok"/>'
        '<testcase classname="tests.test_capacity" name="test_lost">'
        '<failure message="AssertionError: assert 3 == 0">line 1\nE   assert 3 == 0</failure></testcase>'
        '<testcase classname="tests.test_lb" name="test_setup"><error message="fixture broke"/></testcase>'
        '</testsuite></testsuites>')
    assert junit_summary.main(["--failures", str(report), str(tmp_path / "absent.xml")]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "FAILURE tests.test_capacity::test_lost",
        "    AssertionError: assert 3 == 0",
        "    | line 1",
        "    | E   assert 3 == 0",
        "ERROR tests.test_lb::test_setup",
        "    fixture broke",
    ]
    write_report(tmp_path / "ok.xml", 2)
    assert junit_summary.main(["--failures", str(tmp_path / "ok.xml")]) == 0
    assert capsys.readouterr().out == ""
