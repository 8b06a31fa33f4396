"""inventories/example, the one users copy: its services fit its groups, every host has an address to reach."""

from __future__ import annotations

import os

import yaml

from ansible_collections.fleet.rollout.plugins.filter.services import service_problems


def load(repo_root, *path):
    with open(os.path.join(repo_root, "inventories", "example", *path), encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def groups_of(node, name="all", into=None):
    """{group: [hosts, its children's included]} of a YAML inventory."""
    into = {} if into is None else into
    hosts = list((node.get("hosts") or {}).keys())
    for child, sub in (node.get("children") or {}).items():
        groups_of(sub or {}, child, into)
        hosts += into[child]
    into[name] = sorted(set(hosts))
    return into


def test_the_example_services_fit_the_example_groups(repo_root):
    inventory = load(repo_root, "hosts.yml")
    groups = groups_of(inventory["all"])
    services = load(repo_root, "group_vars", "all.yml")["rollout_services"]
    assert service_problems(services, groups) == []
    assert len(groups["lb"]) == 2 and groups["blue"] and groups["green"]
    assert set(groups["app"]) == set(groups["blue"]) | set(groups["green"])
    hosts = {}
    for group in ("lb", "blue", "green"):
        node = inventory["all"]["children"]
        node = node[group] if group == "lb" else node["app"]["children"][group]
        hosts.update(node["hosts"])
    assert all(values.get("ansible_host") for values in hosts.values()), hosts


def test_the_example_keeps_secrets_out_and_the_admin_socket_local(repo_root):
    app = load(repo_root, "group_vars", "app.yml")
    assert app["release_environment"]["DATABASE_URL"].strip() == "{{ vault_shop_database_url }}"
    assert app["release_artifact_url"].startswith("https://") and "release_sha256" in app
    assert load(repo_root, "group_vars", "lb.yml")["haproxy_socket"].startswith("/")


def test_every_file_at_the_top_of_the_example_is_an_inventory_source(repo_root):
    """Ansible reads every top-level file of an inventory directory as an inventory: any other file there (an
    example vault) makes every run warn that it failed to parse it."""
    top = os.path.join(repo_root, "inventories", "example")
    files = sorted(name for name in os.listdir(top) if os.path.isfile(os.path.join(top, name)))
    assert files == ["hosts.yml"], files
    assert os.path.isfile(os.path.join(top, "group_vars", "app", "vault.yml.example"))
