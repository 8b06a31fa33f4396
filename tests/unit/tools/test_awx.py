"""The AWX job templates, surveys and workflow (awx/) against the playbooks and the roles' argument specs,
and the execution environment definition against the collection it installs."""

from __future__ import annotations

import glob
import json
import os

import pytest
import yaml

SURVEY_TYPES = {"text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect"}
STRATEGIES = {"recreate", "ramped", "blue_green", "canary", "ab_test", "shadow"}
# Variables of the playbooks themselves (not of a role's argument spec).
PLAYBOOK_VARIABLES = {"rollout_strategy", "ab_test_variant", "rollout_app_group", "rollout_status_history",
                      "rollout_status_json"}


def load_json(path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def load_yaml(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


@pytest.fixture(scope="module")
def templates(repo_root):
    found = {os.path.basename(p): load_json(p) for p in sorted(glob.glob(os.path.join(repo_root, "awx", "job_templates",
                                                                                      "*.json")))}
    assert found
    return found


@pytest.fixture(scope="module")
def role_variables(repo_root):
    """{variable: its spec} over every role's entry points."""
    specs = {}
    for path in glob.glob(os.path.join(repo_root, "roles", "*", "meta", "argument_specs.yml")):
        for entry in load_yaml(path)["argument_specs"].values():
            specs.update(entry.get("options") or {})
    return specs


def test_one_template_per_strategy_and_operation(templates):
    strategies = {t["extra_vars"].get("rollout_strategy") for t in templates.values()} - {None}
    assert strategies == STRATEGIES
    playbooks = {t["playbook"] for t in templates.values()}
    assert playbooks == {"playbooks/deploy.yml", "playbooks/rollback.yml", "playbooks/promote.yml",
                         "playbooks/abort.yml", "playbooks/status.yml"}
    assert len({t["name"] for t in templates.values()}) == len(templates)


def test_every_template_runs_a_playbook_of_the_project(templates, repo_root):
    for name, template in templates.items():
        assert os.path.isfile(os.path.join(repo_root, template["playbook"])), name
        assert template["survey_enabled"] is True, name
        if template["job_type"] == "check":
            # The plan: check mode changes nothing, so it may run beside a rollout.
            assert name == "plan.json" and template["playbook"] == "playbooks/deploy.yml", name
            continue
        assert template["job_type"] == "run", name
        # One rollout of a service at a time is the lock's job too, but AWX should not even start a second.
        assert template["allow_simultaneous"] is False, name


def test_the_plan_template_offers_every_strategy_in_check_mode(templates):
    plan = templates["plan.json"]
    strategy = next(q for q in plan["survey_spec"]["spec"] if q["variable"] == "rollout_strategy")
    assert set(strategy["choices"]) == STRATEGIES and plan["job_type"] == "check"


def test_survey_questions_are_documented_variables_with_valid_answers(templates, role_variables):
    for name, template in templates.items():
        spec = template["survey_spec"]["spec"]
        assert spec, name
        assert len({q["variable"] for q in spec}) == len(spec), name
        for question in spec:
            where = "%s: %s" % (name, question["variable"])
            assert question["type"] in SURVEY_TYPES, where
            assert question["variable"] in role_variables or question["variable"] in PLAYBOOK_VARIABLES, where
            assert question["question_name"] and isinstance(question["required"], bool), where
            documented = role_variables.get(question["variable"], {})
            # AWX sends a default as an extra var, which would override the inventory's value: none.
            assert "default" not in question or question["required"], where
            if question["type"] in ("integer", "float"):
                assert documented.get("type") in ("int", "float", "raw"), where
                assert question["min"] <= question["max"], where
            if question["type"] == "multiplechoice" and documented.get("choices"):
                assert set(question["choices"]) <= set(documented["choices"]), where
        variables = [q["variable"] for q in spec]
        if template["playbook"] == "playbooks/deploy.yml":
            assert variables[:2] == ["rollout_version", "rollout_service"] and spec[0]["required"] is True, name


def test_a_choice_always_has_an_answer(templates):
    """A blank optional choice reaches the playbook as null (AWX 24), which a role reads as false or empty, not as
    its default: every choice is required, with the role's default as the survey's."""
    for name, template in templates.items():
        for question in template["survey_spec"]["spec"]:
            if question["type"] in ("multiplechoice", "multiselect"):
                where = "%s: %s" % (name, question["variable"])
                assert question["required"] is True and question.get("default") in question["choices"], where


def test_the_workflow_waits_for_an_approval_between_canary_and_promote(templates, repo_root):
    workflow = load_json(os.path.join(repo_root, "awx", "workflows", "canary-approval.json"))
    names = {t["name"]: t for t in templates.values()}
    nodes = {n["identifier"]: n for n in workflow["workflow_nodes"]}
    for node in nodes.values():
        template = node["unified_job_template"]
        if template["type"] == "job_template":
            assert template["name"] in names, template["name"]
        for targets in node.get("related", {}).values():
            assert all(target["identifier"] in nodes for target in targets), node["identifier"]
    canary = names[nodes["canary"]["unified_job_template"]["name"]]
    assert canary["extra_vars"] == {"rollout_strategy": "canary", "canary_promote": False}
    assert [t["identifier"] for t in nodes["canary"]["related"]["success_nodes"]] == ["approve"]
    approve = nodes["approve"]
    assert approve["unified_job_template"]["type"] == "workflow_approval" and approve["unified_job_template"]["timeout"] > 0
    assert [t["identifier"] for t in approve["related"]["success_nodes"]] == ["promote"]
    assert [t["identifier"] for t in approve["related"]["failure_nodes"]] == ["abort"]
    assert names[nodes["promote"]["unified_job_template"]["name"]]["playbook"] == "playbooks/promote.yml"
    assert names[nodes["abort"]["unified_job_template"]["name"]]["playbook"] == "playbooks/abort.yml"


def test_the_execution_environment_installs_this_collection_into_python_3_11(repo_root):
    ee = load_yaml(os.path.join(repo_root, "execution-environment.yml"))
    assert ee["version"] == 3
    # ansible-core 2.19 needs Python 3.11; awx-ee's own is 3.9.
    assert ee["dependencies"]["python_interpreter"] == {"package_system": "python3.11", "python_path": "/usr/bin/python3.11"}
    # The tarball under a fixed name (make ee-context copies galaxy.yml's version there): no version to keep in step.
    assert [f["src"] for f in ee["additional_build_files"]] == ["build/ee-collection/fleet-rollout.tar.gz"]
    requirements = load_yaml(os.path.join(repo_root, ee["dependencies"]["galaxy"]))
    assert requirements["collections"] == [{"name": "/tmp/fleet-rollout-collections/fleet-rollout.tar.gz", "type": "file"}]
    assert "COPY _build/collections/ /tmp/fleet-rollout-collections/" in ee["additional_build_steps"]["prepend_galaxy"]
    core = load_yaml(os.path.join(repo_root, "meta", "runtime.yml")).get("requires_ansible", "")
    assert core and ee["dependencies"]["ansible_core"]["package_pip"].startswith("ansible-core==")
    collection_ee = load_yaml(os.path.join(repo_root, "meta", "execution-environment.yml"))
    assert os.path.isfile(os.path.join(repo_root, collection_ee["dependencies"]["python"]))
    version = load_yaml(os.path.join(repo_root, "galaxy.yml"))["version"]
    for name in ("execution-environment.yml", "ee/requirements.yml"):
        with open(os.path.join(repo_root, name), encoding="utf-8") as handle:
            assert version not in handle.read(), name  # galaxy.yml alone says the version


def test_a_blank_optional_answer_awx_sends_as_null_falls_back_to_the_default(repo_root):
    """AWX 24 sends a blank optional survey answer as null: a play's groups must treat null as not given."""
    for path in sorted(glob.glob(os.path.join(repo_root, "playbooks", "*.yml"))):
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        for variable, default in (("rollout_app_group", "app"), ("rollout_lb_group", "lb")):
            assert "%s | default('%s')" % (variable, default) not in text, (path, variable)
        for play in load_yaml(path) or []:
            hosts = play.get("hosts", "")
            if "rollout_app_group" in hosts:
                assert "rollout_app_group | default('app', true)" in hosts, (path, hosts)
