"""The production deployment files (deploy/docker, deploy/helm, docs/deploy.md) agree with the
code, checked statically: no container engine or cluster runs them here.

- docker-compose.yaml parses; the app services share one image built from the Dockerfile, the
  others pin theirs; the files it mounts and reads exist.
- Every command (compose services and healthchecks, the image's CMD, the Helm code server and
  worker Deployments) is a console script this environment installs, and its arguments parse
  under that script's real click CLI (an unknown or misplaced option fails), with each file
  argument mapped through the Dockerfile's COPY lines to a file of the repository.
- The workers listen on exactly the queues the code routes steps to (STT_QUEUE,
  ANALYSIS_QUEUE and dagster-celery's default), one comma-joined -q each.
- Every variable the compose file, env.example and the Helm ConfigMap set is one the settings
  read (names derived from the Settings model), one the instance or Celery files read through
  `env:`, or a standard Dagster/AWS one; every ${...} the compose file needs is in env.example.
- The Dockerfile's COPY sources exist and are inside the build context its .dockerignore
  leaves, which keeps .venv, data, .git and the compose .env out; the editable install keeps
  deploy/celery.yaml where definitions.py looks for it.
- The code server's port and location name agree across workspace.yaml, compose, Dockerfile
  and Helm; the Helm instance settings keep deploy/dagster.yaml's per-consultation run limit
  and respect Dagster's rule against run limits in both `concurrency` and run_coordinator.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
import tomllib
from importlib.metadata import entry_points
from pathlib import Path, PurePosixPath
from typing import Any

import click
import pytest
import yaml
from pydantic import AliasChoices

from cscoach_pipeline.definitions import CELERY_CONFIG
from cscoach_pipeline.defs.partitions import ANALYSIS_QUEUE, QUEUE_TAG, STT_QUEUE
from cscoach_pipeline.settings import PROJECT_ROOT, Settings

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "deploy" / "docker"
HELM = REPO / "deploy" / "helm"
DOCKERFILE = DOCKER / "Dockerfile"
COMPOSE = DOCKER / "docker-compose.yaml"
EXECUTABLES = ("dagster", "dagster-webserver", "dagster-daemon", "dagster-celery")
# The chart's instance reads Dagster's PostgreSQL password from this variable
# (helm/dagster/templates/helpers/instance/_postgresql.tpl).
CHART_PG_PASSWORD = "DAGSTER_PG_PASSWORD"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def compose() -> dict[str, Any]:
    return load(COMPOSE)


def app_services() -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in compose()["services"].items() if "build" in svc}


def helm_docs() -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((HELM / "celery-workers.yaml").read_text()) if doc]


def helm_workers() -> list[dict[str, Any]]:
    return [doc for doc in helm_docs() if doc["kind"] == "Deployment"]


def code_deployment() -> dict[str, Any]:
    (deployment,) = load(HELM / "values.yaml")["dagster-user-deployments"]["deployments"]
    return deployment


# --- the Dockerfile ------------------------------------------------------------------------------


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order: comment lines dropped, continuations joined."""
    lines = [line for line in DOCKERFILE.read_text().splitlines() if not line.startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in joined.splitlines()
        if line.strip()
    ]


def copies() -> list[tuple[list[str], str]]:
    found = []
    for name, args in instructions():
        if name == "COPY":
            *sources, dest = [a for a in shlex.split(args) if not a.startswith("--")]
            found.append((sources, dest))
    return found


def workdir() -> PurePosixPath:
    return PurePosixPath([args for name, args in instructions() if name == "WORKDIR"][-1])


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for name, args in instructions():
        if name == "ENV":
            env |= dict(pair.split("=", 1) for pair in shlex.split(args))
    return env


def image_to_repo(path: str) -> Path:
    """The repository file that the image has at `path` (relative paths from WORKDIR)."""
    wanted = workdir() / path
    for sources, dest in reversed(copies()):
        into_dir = dest.endswith("/") or dest in (".", "./")
        dest_path = workdir() / dest
        for source in sources:
            if not into_dir and wanted == dest_path:
                return REPO / source
            if into_dir and source.endswith("/") and wanted.is_relative_to(dest_path):
                return REPO / source / wanted.relative_to(dest_path)
            if into_dir and wanted == dest_path / PurePosixPath(source).name:
                return REPO / source
    raise AssertionError(f"{path} is not copied into the image")


def ignore_patterns() -> list[str]:
    text = (DOCKER / "Dockerfile.dockerignore").read_text()
    return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    for token in re.split(r"(\*\*/|\*\*|\*|\?)", pattern.strip("/")):
        out += {"**/": "(.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(token, re.escape(token))
    return re.compile(out)


def in_build_context(relative: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = PurePosixPath(relative).parts
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    included = True
    for pattern in ignore_patterns():
        negated = pattern.startswith("!")
        regex = _pattern_regex(pattern.lstrip("!"))
        if any(regex.fullmatch(candidate) for candidate in candidates):
            included = negated
    return included


# --- commands -------------------------------------------------------------------------------------


def console_script(name: str) -> click.Command:
    (entry,) = entry_points(group="console_scripts", name=name)
    target = entry.load()
    if not isinstance(target, click.Command):  # a main() that calls the module's click `cli`
        target = sys.modules[target.__module__].cli
    return target


def parse(argv: list[str]) -> dict[str, Any]:
    """The parameters the installed CLI parses from argv, as run in the image's WORKDIR."""
    exe, *args = argv
    assert exe in EXECUTABLES, f"{exe} is not one of the project's Dagster executables"
    assert (Path(sys.executable).parent / exe).exists(), f"{exe} is not installed here"
    args = [str(image_to_repo(a)) if a.endswith(".yaml") else a for a in args]
    command, names = console_script(exe), [exe]
    while isinstance(command, click.Group):
        sub = command.get_command(click.Context(command), args[0])
        assert sub is not None, f"{' '.join(names)} has no subcommand {args[0]}"
        names.append(args.pop(0))
        command = sub
    return command.make_context(" ".join(names), args).params


def image_cmd() -> list[str]:
    return json.loads([args for name, args in instructions() if name == "CMD"][-1])


def all_commands() -> dict[str, list[str]]:
    commands = {f"compose {name}": svc["command"] for name, svc in app_services().items()}
    commands |= {
        f"compose {name} healthcheck": svc["healthcheck"]["test"][1:]
        for name, svc in app_services().items()
        if "healthcheck" in svc
    }
    commands["Dockerfile CMD"] = image_cmd()
    deployment = code_deployment()
    commands["helm code server"] = [
        # As the chart's deployment-user.yaml builds it from codeServerArgs.
        *["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", str(deployment["port"])],
        *deployment["codeServerArgs"],
    ]
    for doc in helm_workers():
        (container,) = doc["spec"]["template"]["spec"]["containers"]
        commands[f"helm {doc['metadata']['name']}"] = container["command"]
    return commands


def worker_queues(commands: list[list[str]]) -> set[str]:
    queues: set[str] = set()
    for argv in commands:
        (joined,) = parse(argv)["queue"]  # one -q: celery keeps only the last -Q
        queues |= set(joined.split(","))
    return queues


def expected_queues() -> set[str]:
    from dagster_celery.defaults import task_default_queue

    return {STT_QUEUE[QUEUE_TAG], ANALYSIS_QUEUE[QUEUE_TAG], task_default_queue}


# --- variables ------------------------------------------------------------------------------------


def settings_variables() -> set[str]:
    prefix = Settings.model_config["env_prefix"]
    names = set()
    for field_name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names |= {choice for choice in alias.choices if isinstance(choice, str)}
        else:
            names.add(alias if isinstance(alias, str) else f"{prefix}{field_name}".upper())
    return names


def env_references(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["env"]} if isinstance(node.get("env"), str) else set()
        return found.union(*(env_references(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(env_references(value) for value in node))
    return set()


def known_variables() -> set[str]:
    files = ["dagster.yaml", "dagster.postgres.yaml", "celery.yaml"]
    instance = set().union(*(env_references(load(REPO / "deploy" / name)) for name in files))
    return settings_variables() | instance | {"DAGSTER_HOME"}


def is_known(name: str) -> bool:
    return name in known_variables() or name.startswith("AWS_")  # boto3's standard variables


def env_example_names() -> set[str]:
    text = (DOCKER / "env.example").read_text()
    return set(re.findall(r"^#? ?([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))


def compose_interpolations() -> set[str]:
    return set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", COMPOSE.read_text()))


# --- tests ------------------------------------------------------------------------------------


def test_compose_parses_and_app_services_share_one_image() -> None:
    services = compose()["services"]
    apps = app_services()
    assert set(apps) == {"code", "webserver", "daemon", "worker-stt", "worker-analysis"}
    assert len({svc["image"] for svc in apps.values()}) == 1
    assert len({json.dumps(svc["build"], sort_keys=True) for svc in apps.values()}) == 1
    build = next(iter(apps.values()))["build"]
    context = (DOCKER / build["context"]).resolve()
    assert context == REPO
    assert (context / build["dockerfile"]).resolve() == DOCKERFILE
    for name in set(services) - set(apps):
        image = services[name]["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: pin its image"
        assert "healthcheck" in services[name], f"{name}: the app services wait for its health"
    for name, svc in apps.items():
        waits_for = set(svc["depends_on"])
        assert "postgres" in waits_for, name
        if name.startswith("worker") or name == "code":
            assert "redis" in waits_for, name


def test_compose_reads_and_mounts_files_that_exist() -> None:
    for name, svc in compose()["services"].items():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DOCKER / source).is_file(), f"{name} mounts missing {source}"
    for svc in app_services().values():
        if "env_file" in svc:
            assert svc["env_file"] == ".env"
    assert (DOCKER / "env.example").is_file()  # the template of .env, beside the compose file


def test_every_command_is_an_installed_executable_with_valid_arguments(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(REPO)  # the image's WORKDIR holds the same tree (COPY lines)
    for where, argv in all_commands().items():
        try:
            parse(argv)
        except click.ClickException as exc:
            pytest.fail(f"{where}: {' '.join(argv)}: {exc.format_message()}")


def test_code_server_loads_the_project_module_on_one_port() -> None:
    module = PYPROJECT["tool"]["dagster"]["module_name"]
    (server,) = load(DOCKER / "workspace.yaml")["load_from"]
    grpc = server["grpc_server"]
    assert grpc["location_name"] == PYPROJECT["tool"]["dagster"]["code_location_name"]
    assert grpc["host"] in compose()["services"]
    code = parse(compose()["services"][grpc["host"]]["command"])
    image = parse(image_cmd())
    helm = parse(all_commands()["helm code server"])
    health = parse(all_commands()["compose code healthcheck"])
    assert code["module_name"] == image["module_name"] == helm["module_name"] == module
    assert grpc["port"] == code["port"] == image["port"] == health["port"]
    exposed = {int(args) for name, args in instructions() if name == "EXPOSE"}
    assert exposed == {image["port"]}
    for name in ("webserver", "daemon"):
        (workspace,) = parse(compose()["services"][name]["command"])["workspace"]
        assert Path(workspace) == DOCKER / "workspace.yaml", name


def test_workers_listen_on_the_queues_the_steps_are_routed_to() -> None:
    workers = {n: s["command"] for n, s in app_services().items() if n.startswith("worker")}
    assert worker_queues(list(workers.values())) == expected_queues()
    helm = [argv for where, argv in all_commands().items() if where.startswith("helm cscoach")]
    assert worker_queues(helm) == expected_queues()
    for argv in [*workers.values(), *helm]:
        assert Path(parse(argv)["config_yaml"]) == CELERY_CONFIG


def test_compose_and_env_example_set_only_known_variables() -> None:
    for name, svc in app_services().items():
        unknown = {v for v in svc.get("environment", {}) if not is_known(v)}
        assert not unknown, f"{name} sets variables nothing reads: {unknown}"
    unknown = {v for v in env_example_names() - compose_interpolations() if not is_known(v)}
    assert not unknown, f"env.example lists variables nothing reads: {unknown}"
    assert compose_interpolations() <= env_example_names(), "env.example must list them"
    # The compose file sets the URLs itself; listed in .env they would be ignored.
    set_by_compose = set(app_services()["code"]["environment"])
    assert not set_by_compose & env_example_names()


def test_helm_pods_set_only_known_variables() -> None:
    (config,) = [doc for doc in helm_docs() if doc["kind"] == "ConfigMap"]
    assert all(is_known(name) for name in config["data"]), config["data"]
    for doc in helm_workers():
        (container,) = doc["spec"]["template"]["spec"]["containers"]
        for var in container["env"]:
            assert is_known(var["name"]) or var["name"] == CHART_PG_PASSWORD, var
        refs = {ref.get("configMapRef", {}).get("name") for ref in container["envFrom"]}
        assert config["metadata"]["name"] in refs
    assert {"name": config["metadata"]["name"]} in code_deployment()["envConfigMaps"]


def test_helm_workers_run_the_code_server_image_with_the_chart_instance() -> None:
    image = code_deployment()["image"]
    uid = [args for name, args in instructions() if name == "USER"][-1].split(":")[0]
    for doc in helm_workers():
        spec = doc["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        assert container["image"] == f"{image['repository']}:{image['tag']}"
        assert str(spec["securityContext"]["runAsUser"]) == uid
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert f"{image_env()['DAGSTER_HOME']}/dagster.yaml" in mounts


def test_dockerfile_copies_exist_inside_the_build_context() -> None:
    for sources, _dest in copies():
        for source in sources:
            assert (REPO / source).exists(), source
            assert in_build_context(source.rstrip("/")), f"{source} is ignored"
    for needed in ("src/cscoach_pipeline/definitions.py", "deploy/celery.yaml", "README.md"):
        assert in_build_context(needed), needed
    for secret_or_bulk in (
        ".venv/bin/python",
        "data/warehouse.db",
        ".git/config",
        "tests",
        "bench-results/x.json",
        "deploy/docker/.env",
        "src/cscoach_pipeline.egg-info/PKG-INFO",
        "src/cscoach_pipeline/__pycache__/settings.cpython-311.pyc",
    ):
        assert not in_build_context(secret_or_bulk), secret_or_bulk


def test_image_keeps_celery_config_where_definitions_look_for_it() -> None:
    # PROJECT_ROOT comes from the package's location: an editable install from WORKDIR keeps
    # it there; `pip install .` would put it under site-packages' parents.
    runs = " ".join(args for name, args in instructions() if name == "RUN")
    assert re.search(r"pip install -e \.(\s|$)", runs)
    relative = CELERY_CONFIG.relative_to(PROJECT_ROOT).as_posix()
    assert image_to_repo(str(workdir() / relative)) == CELERY_CONFIG
    assert image_to_repo("pyproject.toml") == REPO / "pyproject.toml"


def test_image_installs_dagster_k8s_at_the_dagster_libraries_version() -> None:
    # The Helm chart's instance names dagster_k8s.K8sRunLauncher; the library version must
    # match the other dagster libraries the project pins.
    values = load(HELM / "values.yaml")
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    (pin,) = [d for d in PYPROJECT["project"]["dependencies"] if d.startswith("dagster-postgres")]
    runs = " ".join(args for name, args in instructions() if name == "RUN")
    assert f'"{pin.replace("dagster-postgres", "dagster-k8s")}"' in runs


def test_helm_instance_settings_follow_the_template() -> None:
    values = load(HELM / "values.yaml")
    template = load(REPO / "deploy" / "dagster.yaml")
    concurrency = values["concurrency"]
    assert concurrency["enabled"]
    # Dagster refuses `concurrency` runs or pools beside run_coordinator run limits.
    assert values["dagsterDaemon"]["runCoordinator"]["enabled"] is False
    assert (
        concurrency["runs"]["tagConcurrencyLimits"]
        == template["concurrency"]["runs"]["tag_concurrency_limits"]
    )
    assert values["dagsterDaemon"]["runMonitoring"]["maxResumeRunAttempts"] == 0
    sensor_retention = values["retention"]["sensor"]["purgeAfterDays"]
    assert set(sensor_retention) == {"skipped", "success", "failure", "started"}
    assert sensor_retention.items() >= template["retention"]["sensor"]["purge_after_days"].items()
    assert values["telemetry"]["enabled"] is template["telemetry"]["enabled"] is False


def test_docs_quote_the_configured_visibility_timeout() -> None:
    options = load(REPO / "deploy" / "celery.yaml")["execution"]["config"]["config_source"]
    timeout = options["broker_transport_options"]["visibility_timeout"]
    assert f"({timeout} s)" in (REPO / "docs" / "deploy.md").read_text()


def test_production_instance_is_the_template_with_production_limits() -> None:
    # The image installs deploy/dagster.production.yaml: only the run and pool limits differ.
    template = load(REPO / "deploy" / "dagster.yaml")
    production = load(REPO / "deploy" / "dagster.production.yaml")
    runs, pools = production["concurrency"]["runs"], production["concurrency"]["pools"]
    assert runs["max_concurrent_runs"] > template["concurrency"]["runs"]["max_concurrent_runs"]
    assert pools["default_limit"] > template["concurrency"]["pools"]["default_limit"] == 1
    for config in (template, production):
        del config["concurrency"]["runs"]["max_concurrent_runs"]
        del config["concurrency"]["pools"]["default_limit"]
    assert production == template
    runs_in_image = " ".join(args for name, args in instructions() if name == "RUN")
    assert "--template deploy/dagster.production.yaml" in runs_in_image
