"""Check that a built collection tarball ships what users need and nothing else.

    check_collection_tarball.py fleet-rollout-X.Y.Z.tar.gz [--version X.Y.Z]

With --version (galaxy.yml's, for the execution environment's context), the
tarball's MANIFEST.json must say that version: an EE built from a stale
tarball would carry another release of the collection than the one tested.
"""

from __future__ import annotations

import json
import posixpath
import re
import sys
import tarfile

# A Markdown link's target: relative ones must name a file or directory the tarball ships.
LINK = re.compile(r"\]\(([^)\s]+)\)")

FORBIDDEN_TOP = {"tests", "molecule", "tools", "scripts", "build", "bench", ".ci", ".config", ".git", ".pytest_cache", "ansible.cfg",
                 "rollout-reports"}
REQUIRED = {"MANIFEST.json", "FILES.json", "meta/runtime.yml", "README.md", "LICENSE"}


def broken_links(docs: dict[str, str], names: set[str]) -> list[tuple[str, str]]:
    """(document, link) for every relative link of the shipped Markdown whose target is not shipped."""
    shipped = names | {posixpath.dirname(name) for name in names}
    broken = []
    for doc, text in sorted(docs.items()):
        for match in LINK.finditer(text):
            link = match.group(1)
            if re.match(r"^[a-z][a-z0-9+.-]*:", link) or link.startswith("#"):
                continue
            target = posixpath.normpath(posixpath.join(posixpath.dirname(doc), link.split("#", 1)[0]))
            if target not in shipped:
                broken.append((doc, link))
    return broken


def check(path: str, version: str | None = None) -> list[str]:
    try:
        tar = tarfile.open(path)
    except (OSError, tarfile.TarError) as exc:
        return ["cannot be read (%s): run make collection-build" % exc]
    with tar:
        names = {name.lstrip("./") for name in tar.getnames()}
        manifest = None
        if version is not None and "MANIFEST.json" in names:
            member = next(m for m in tar.getmembers() if m.name.lstrip("./") == "MANIFEST.json")
            manifest = json.load(tar.extractfile(member))
        docs = {name: tar.extractfile(member).read().decode("utf-8", "replace")
                for member in tar.getmembers() if member.isfile()
                for name in [member.name.lstrip("./")] if name.endswith(".md")}
    problems = ["missing %s" % name for name in sorted(REQUIRED - names)]
    shipped = sorted(name for name in names if name.split("/", 1)[0] in FORBIDDEN_TOP)
    problems += ["must not ship %s" % name for name in shipped]
    problems += ["%s links to %s, which the tarball does not ship" % (doc, link) for doc, link in broken_links(docs, names)]
    if manifest is not None:
        found = manifest.get("collection_info", {}).get("version")
        if found != version:
            problems.append("is version %s, galaxy.yml says %s: run make collection-build" % (found, version))
    return problems


def main(argv: list[str]) -> int:
    version = None
    if len(argv) == 3 and argv[1] == "--version":
        version = argv[2]
        argv = argv[:1]
    if len(argv) != 1:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    problems = check(argv[0], version)
    for problem in problems:
        print("%s: %s" % (argv[0], problem), file=sys.stderr)
    if not problems:
        print("%s: ok" % argv[0])
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
