"""What keeps the repository honest: CI runs the one test command, and the test command lints first."""

import subprocess

import yaml

from notebook_recipe import NOTEBOOK

ROOT = NOTEBOOK.parent


def test_github_workflow_runs_ci_script_on_push_pull_request_and_weekly():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    triggers = workflow[True] if True in workflow else workflow["on"]  # YAML 1.1 reads a bare `on` as True
    assert {"push", "pull_request", "schedule"} <= set(triggers)
    assert len(triggers["schedule"][0]["cron"].split()) == 5
    steps = [step.get("run", "") for job in workflow["jobs"].values() for step in job["steps"]]
    assert "bash .ci/run" in steps


def test_ci_script_runs_the_readme_test_command_and_make_test_lints_first():
    assert (ROOT / ".ci" / "run").read_text().rstrip().endswith("make test")
    assert "make test    # " in (ROOT / "README.md").read_text()
    planned = subprocess.run(["make", "-n", "test"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    commands = [line for line in planned.splitlines() if "ruff check" in line or "pytest" in line]
    assert "ruff check ." in commands[0]
    assert "pytest" in commands[-1]
