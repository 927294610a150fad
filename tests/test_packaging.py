"""The two README commands, CI and the Dockerfile must stay one install path."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    first_block = re.search(r"```bash\n(.*?)```", readme, re.S).group(1)
    return [line for line in first_block.splitlines() if line and not line.startswith("#")]


def test_readme_starts_with_serve_and_test_commands():
    assert _readme_commands() == ["scripts/serve.sh", "scripts/test.sh"]
    for command in _readme_commands():
        script = (ROOT / command).read_text()
        assert "scripts/setup.sh" in script


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci/run").read_text()
    assert re.search(r"^exec scripts/test.sh", ci, re.M)


def test_dockerfile_uses_setup_script_and_runs_service_as_non_root():
    docker = (ROOT / "Dockerfile").read_text()
    assert "RUN scripts/setup.sh" in docker
    user = re.search(r"^USER (\S+)", docker, re.M)
    assert user and user.group(1) not in ("root", "0")
    assert docker.index("USER") < docker.index("RUN scripts/setup.sh")
    assert re.search(r'^CMD \[.*alttext", "serve"\]', docker, re.M)
    for source in re.findall(r"^COPY (?:--chown=\S+ )?(.+) \S+$", docker, re.M):
        for path in source.split():
            assert (ROOT / path).exists(), f"Dockerfile copies missing {path}"


def test_setup_installs_cpu_torch_before_the_project():
    setup = (ROOT / "scripts/setup.sh").read_text()
    assert setup.index("torch==") < setup.index('install -e ".${extras}"')
