"""Check that a built collection tarball ships what users need and nothing else.

    check_collection_tarball.py fleet-rollout-X.Y.Z.tar.gz
"""

from __future__ import annotations

import sys
import tarfile

FORBIDDEN_TOP = {"tests", "molecule", "tools", "scripts", "build", "bench", ".ci", ".config", ".git", ".pytest_cache", "ansible.cfg",
                 "rollout-reports"}
REQUIRED = {"MANIFEST.json", "FILES.json", "meta/runtime.yml", "README.md"}


def check(path: str) -> list[str]:
    with tarfile.open(path) as tar:
        names = {name.lstrip("./") for name in tar.getnames()}
    problems = ["missing %s" % name for name in sorted(REQUIRED - names)]
    shipped = sorted(name for name in names if name.split("/", 1)[0] in FORBIDDEN_TOP)
    problems += ["must not ship %s" % name for name in shipped]
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    problems = check(argv[0])
    for problem in problems:
        print("%s: %s" % (argv[0], problem), file=sys.stderr)
    if not problems:
        print("%s: ok" % argv[0])
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
