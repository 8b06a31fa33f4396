"""Testinfra access to the lab fleet, through the lab inventory."""

from __future__ import annotations

import os

import pytest
import testinfra
import testinfra.utils.ansible_runner

LAB_INVENTORY = os.path.join(os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.getcwd()), "inventories", "lab")


def lab_hosts(group: str) -> list[str]:
    """Inventory hostnames of a lab group (read from the inventory, not hard-coded)."""
    return testinfra.utils.ansible_runner.AnsibleRunner(LAB_INVENTORY).get_hosts(group)


@pytest.fixture(scope="session")
def host_for():
    cache = {}

    def get(name: str):
        if name not in cache:
            cache[name] = testinfra.get_host("ansible://%s?ansible_inventory=%s" % (name, LAB_INVENTORY))
        return cache[name]

    return get
