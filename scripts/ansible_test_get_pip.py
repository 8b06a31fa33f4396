"""Offline stand-in for the get-pip script that ansible-test downloads.

ansible-test bootstraps pip in each of its virtualenvs by running a get-pip
script fetched from a host that is not reachable from the lab machines. It
looks for a cached copy first (~/.ansible/test/cache/get_pip_<version>.py);
scripts/bootstrap.sh installs this file there. It installs pip from the
interpreter's bundled wheel (ensurepip) and then lets that pip install the
exact packages ansible-test asked for, from the configured package index.

``python ansible_test_get_pip.py --cache-name`` prints the file name the
installed ansible-test expects.
"""

from __future__ import annotations

import ensurepip
import os
import re
import subprocess
import sys


def cache_name() -> str:
    import ansible_test  # only the controller venv has it

    path = os.path.join(os.path.dirname(ansible_test.__file__), "_internal", "python_requirements.py")
    with open(path, encoding="utf-8") as handle:
        match = re.search(r"pip='(\d+(?:\.\d+)*)'", handle.read())
    if not match:
        raise SystemExit("cannot find the pip version ansible-test bootstraps in %s" % path)
    return "get_pip_%s.py" % match.group(1).replace(".", "_")


def main(argv: list[str]) -> int:
    if argv == ["--cache-name"]:
        print(cache_name())
        return 0
    ensurepip.bootstrap(upgrade=True)
    # ensurepip points PIP_CONFIG_FILE at /dev/null, which would hide the
    # machine's pip settings (index, certificates) from the install below.
    os.environ.pop("PIP_CONFIG_FILE", None)
    args = [arg for arg in argv if arg not in ("--no-setuptools", "--no-wheel")]
    return subprocess.call([sys.executable, "-m", "pip", "install", "--upgrade", *args])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
