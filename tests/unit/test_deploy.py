"""The Docker Compose deployment (docker-compose.yml, Dockerfile, deploy/): no Docker engine runs here, so the files
are validated, not run. The compose file is checked against the Compose Specification's JSON schema
(tests/data/compose-spec.json: compose-spec/compose-spec, schema/compose-spec.json at 170098b, Apache-2.0), after
interpolating `.env.example` as `docker compose` does; then what the schema cannot know: that every setting the
TrainEasy containers get is one TrainEasy reads, that their commands exist, that the parts start in order, that
secrets are required rather than defaulted, and that the Temporal schema script does the right steps. The split
it relies on (the app with no worker of its own, workers elsewhere) runs for real in
tests/e2e/test_split_deployment.py."""

from __future__ import annotations

import inspect
import json
import os
import re
import stat
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from core.config import PROJECT_ROOT
from orchestration.codec_server import codec_routes

COMPOSE = PROJECT_ROOT / "docker-compose.yml"
SCHEMA = Path(__file__).parent.parent / "data" / "compose-spec.json"
TRAINEASY = ("app", "worker")  # the services that run TrainEasy's image
_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)")


def env_example(password: str = "a-test-password") -> dict[str, str]:
    """.env.example's settings, with the password a user sets (the example ships none)."""
    lines = (PROJECT_ROOT / ".env.example").read_text().splitlines()
    env = dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))
    return {**env, "POSTGRES_PASSWORD": password}


class Missing(Exception):
    pass


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable substitution: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}, $$."""

    def one(m: re.Match[str]) -> str:
        name = m["name"] or m["bare"]
        value, op = env.get(name), m["op"]
        if op in (":-", "-"):
            return m["arg"] if value is None or (op == ":-" and value == "") else value
        if op in (":?", "?") and (value is None or (op == ":?" and value == "")):
            raise Missing(f"{name}: {m['arg']}")
        return value or ""

    parts = text.split("$$")
    return "$".join(_VAR.sub(one, part) for part in parts)


def compose(env: dict[str, str] | None = None) -> dict:
    return yaml.safe_load(interpolate(COMPOSE.read_text(), env_example() if env is None else env))


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def test_the_compose_file_is_valid_by_the_compose_specification():
    schema = json.loads(SCHEMA.read_text())
    doc = compose()
    jsonschema.validate(doc, schema)
    assert {"postgresql", "temporal-schema", "temporal", "temporal-namespace", "temporal-ui", "app", "worker"} <= set(
        doc["services"]
    )
    # and the schema does reject a broken file (the check is not vacuous)
    broken = compose()
    broken["services"]["app"]["ports"] = {"8501": 8501}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_every_variable_has_a_default_or_is_a_required_secret_named_in_the_example():
    text, example = COMPOSE.read_text(), env_example()
    used = {m["name"] or m["bare"]: m["op"] for m in _VAR.finditer(text.replace("$$", ""))}
    assert used, "the compose file uses no variable at all?"
    for name, op in used.items():
        assert op in (":-", "-", ":?"), f"${{{name}}} has neither a default nor an error message"
        assert name in example, f"{name} is not in .env.example"
    # the password has no default: without it compose refuses to start, and says where to set it
    env = {k: v for k, v in example.items() if k != "POSTGRES_PASSWORD"}
    with pytest.raises(Missing, match="POSTGRES_PASSWORD: set POSTGRES_PASSWORD in .env"):
        compose(env)
    with pytest.raises(Missing, match="POSTGRES_PASSWORD"):  # nor with the example copied as it is
        compose(env_example(password=""))
    assert ".env" in (PROJECT_ROOT / ".gitignore").read_text().split()  # the password stays out of git
    assert ".env" in (PROJECT_ROOT / ".dockerignore").read_text().split()


def test_images_are_pinned_to_a_version():
    for name, service in compose()["services"].items():
        image = service.get("image", "")
        if "build" in service:
            continue  # TrainEasy's own, built from the Dockerfile
        repo, _, tag = image.rpartition(":")
        assert repo and re.fullmatch(r"\d+(\.\d+)+", tag), f"{name}: {image!r} is not pinned to a version"
    base = re.search(r"^FROM (\S+)", (PROJECT_ROOT / "Dockerfile").read_text(), re.M)
    assert base and re.search(r":\d+\.\d+\.\d+-", base[1]), base


def test_traineasy_containers_get_only_settings_traineasy_reads_and_run_real_entry_points():
    read = "\n".join(p.read_text() for p in [PROJECT_ROOT / "core" / "config.py", PROJECT_ROOT / "orchestration" / "codec.py"])
    services = compose()["services"]
    for name in TRAINEASY:
        service = services[name]
        for key in environment(service):
            if key.startswith("TEMPORAL_"):  # the Temporal client's own variables (envconfig), README Configuration
                assert key in ("TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE"), key
            else:
                assert f'"{key}"' in read, f"{name}: {key} is not a setting TrainEasy reads"
        assert environment(service)["TRAINEASY_HOME"] == "/data"
        # TrainEasy's own settings (quotas, limits, trusted proxies) reach the containers from traineasy.env
        assert service["env_file"] == [{"path": "traineasy.env", "required": False}], name
        assert "traineasy-data:/data" in [v.split(" ")[0] for v in service["volumes"]], f"{name} does not share the data volume"
    assert services["app"]["command"] == ["python", "launcher.py"] and (PROJECT_ROOT / "launcher.py").is_file()
    assert services["worker"]["command"] == ["python", "-m", "workers"] and (PROJECT_ROOT / "workers" / "__main__.py").is_file()
    assert environment(services["app"])["TRAINEASY_WORKERS"] == "0"  # the worker service runs them
    assert int(services["worker"]["deploy"]["replicas"]) >= 1


def test_the_parts_start_in_order_and_nothing_waits_on_what_waits_on_it():
    services = compose()["services"]
    expected = {
        "temporal-schema": {"postgresql": "service_healthy"},
        "temporal": {"temporal-schema": "service_completed_successfully"},
        "temporal-namespace": {"temporal": "service_healthy"},
        "temporal-ui": {"temporal": "service_healthy"},
        "app": {"temporal-namespace": "service_completed_successfully"},
        "worker": {"temporal-namespace": "service_completed_successfully"},
    }
    for name, deps in expected.items():
        got = {dep: spec["condition"] for dep, spec in services[name]["depends_on"].items()}
        assert got == deps, name
    for deps in expected.values():  # what a service waits on with service_healthy has a health check
        for dep, condition in deps.items():
            if condition == "service_healthy":
                assert "healthcheck" in services[dep], dep


def test_only_the_app_faces_the_network_and_only_when_asked():
    services = compose()["services"]
    published = {name: s.get("ports", []) for name, s in services.items()}
    assert {name for name, ports in published.items() if ports} == {"temporal", "temporal-ui", "app"}
    for port in published["temporal"] + published["temporal-ui"]:
        assert port.startswith("127.0.0.1:"), port  # Temporal's gRPC port and its UI: this host only
    assert all(port.startswith("127.0.0.1:") for port in published["app"])  # loopback unless TRAINEASY_BIND says
    opened = compose({**env_example(), "TRAINEASY_BIND": "0.0.0.0"})["services"]["app"]["ports"]
    assert opened == ["0.0.0.0:8501:8501", "0.0.0.0:8502:8502"]


def test_under_memory_pressure_the_kernel_takes_a_fit_before_the_services_that_hold_state():
    services = compose()["services"]
    assert services["worker"]["oom_score_adj"] > 0  # inherited by the fit processes a worker starts
    assert all(services[name].get("oom_score_adj", 0) <= 0 for name in services if name != "worker")


def test_the_temporal_ui_decrypts_through_the_apps_codec_route_which_allows_its_origin(monkeypatch):
    env = {
        **env_example(),
        "TRAINEASY_PUBLIC_URL": "https://trains.example.org",  # behind a TLS proxy
        "TEMPORAL_UI_PUBLIC_URL": "https://trains.example.org:9443",
        "TRAINEASY_APP_PORT": "9501",
        "TEMPORAL_UI_PORT": "9080",
    }
    services = compose(env)["services"]
    ui, app = environment(services["temporal-ui"]), environment(services["app"])
    assert ui["TEMPORAL_CODEC_ENDPOINT"] == "https://trains.example.org/codec"
    assert ui["TEMPORAL_CODEC_INCLUDE_CREDENTIALS"] == "true"  # the admin's session cookie goes with it
    assert app["TRAINEASY_TEMPORAL_UI_URL"] == "https://trains.example.org:9443"
    # the UI as users reach it, and as the host itself names its port (an SSH tunnel of it), and nothing else
    origins = app["TRAINEASY_CODEC_ORIGINS"].split(",")
    assert origins == ["https://trains.example.org:9443", "http://localhost:9080", "http://127.0.0.1:9080"]
    import core.config as config  # noqa: PLC0415 - read as the app reads it

    monkeypatch.setenv("TRAINEASY_CODEC_ORIGINS", app["TRAINEASY_CODEC_ORIGINS"])
    assert list(config.load_settings().codec_origins) == origins
    assert "127.0.0.1:9501:8501" in services["app"]["ports"]
    # the route the UI is pointed at is the one serve.py mounts (codec_routes' default prefix)
    assert inspect.signature(codec_routes).parameters["prefix"].default == "/codec"
    serve = (PROJECT_ROOT / "serve.py").read_text()
    assert "codec_routes(" in serve and "prefix=" not in serve


def test_the_image_installs_the_pinned_requirements_and_runs_unprivileged():
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    assert "COPY requirements.txt" in dockerfile and "pip install -r requirements.txt" in dockerfile
    user = re.search(r"^USER (\S+)", dockerfile, re.M)
    assert user and user[1] not in ("root", "0")
    assert "TRAINEASY_HOME=/data" in dockerfile
    ignored = (PROJECT_ROOT / ".dockerignore").read_text().split()
    assert {".venv", "var/", ".git"} <= set(ignored)
    for script in (PROJECT_ROOT / "deploy" / "temporal").glob("*.sh"):
        assert os.stat(script).st_mode & stat.S_IXUSR, script
        subprocess.run(["sh", "-n", str(script)], check=True)
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (PROJECT_ROOT / source).exists(), f"{name} mounts {source}, which does not exist"
        entry = service.get("entrypoint", [])
        for part in entry:
            if part.startswith("/deploy/"):
                assert (PROJECT_ROOT / "deploy" / "temporal" / part.removeprefix("/deploy/")).is_file(), part


def _run_schema_script(tmp_path: Path, state: dict[str, str]) -> list[str]:
    """deploy/temporal/setup-postgres.sh with a stand-in temporal-sql-tool (the admin-tools image's) that logs its
    arguments and keeps each database's state in a file: absent, created ("db") or with its schema ("schema"), as
    the real tool behaves: `create` accepts a database that exists, `setup-schema -v 0.0` skips a schema that is
    there, `update-schema` fails on a database without one."""
    calls, db_dir = tmp_path / "calls", tmp_path / "dbs"
    db_dir.mkdir()
    for db, what in state.items():
        (db_dir / db).write_text(what)
    tool = tmp_path / "bin" / "temporal-sql-tool"
    tool.parent.mkdir()
    tool.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {calls}\n'
        'db=""; prev=""; for a in "$@"; do [ "$prev" = "--db" ] && db="$a"; prev="$a"; done\n'
        f'f="{db_dir}/$db"\n'
        'case " $* " in\n'
        '  *" create "*) [ -e "$f" ] || echo db > "$f";;\n'
        '  *" setup-schema "*) [ -e "$f" ] || exit 1; echo schema > "$f";;\n'
        '  *" update-schema "*) [ "$(cat "$f" 2>/dev/null)" = schema ] || exit 1;;\n'
        "esac\n"
        "exit 0\n"
    )
    tool.chmod(0o755)
    env = {
        "PATH": f"{tool.parent}:/usr/bin:/bin",
        "POSTGRES_SEEDS": "postgresql",
        "POSTGRES_USER": "temporal",
        "SQL_PASSWORD": "pw",
    }
    script = PROJECT_ROOT / "deploy" / "temporal" / "setup-postgres.sh"
    out = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    for db in ("temporal", "temporal_visibility"):
        assert (db_dir / db).read_text().strip() == "schema", db  # whatever the start, both end with their schema
    return [" ".join(line.split()[8:]) for line in calls.read_text().splitlines()]  # after "--plugin … -p 5432"


def _steps(db: str, *names: str) -> list[str]:
    versioned = "temporal" if db == "temporal" else "visibility"
    full = {
        "create": f"--db {db} create",
        "setup": f"--db {db} setup-schema -v 0.0",
        "update": f"--db {db} update-schema -d /etc/temporal/schema/postgresql/v12/{versioned}/versioned",
    }
    return [full[name] for name in names]


@pytest.mark.parametrize(
    "state",
    [{}, {"temporal": "schema", "temporal_visibility": "schema"}, {"temporal": "db", "temporal_visibility": "db"}],
    ids=["first-start", "later-start", "after-an-interrupted-first-start"],
)
def test_the_schema_script_sets_up_what_is_missing_and_updates_the_rest(tmp_path, state):
    calls = _run_schema_script(tmp_path, state)  # it also checks both databases end with their schema
    steps = ("create", "setup", "update")
    assert calls == _steps("temporal", *steps) + _steps("temporal_visibility", *steps)


def test_the_temporal_services_are_wired_as_the_images_read_them():
    """What temporalio/server 1.30.1's embedded config template and the admin-tools' temporal-sql-tool read (see
    the template in the temporalio/temporal repository, common/config/config_template_embedded.yaml)."""
    services = compose()["services"]
    server = environment(services["temporal"])
    template_reads = {
        "DB",
        "DB_PORT",
        "POSTGRES_SEEDS",
        "POSTGRES_USER",
        "POSTGRES_PWD",
        "BIND_ON_IP",
        "DYNAMIC_CONFIG_FILE_PATH",
    }
    assert set(server) == template_reads
    assert (
        server["DB"] == "postgres12" and "--plugin postgres12" in (PROJECT_ROOT / "deploy/temporal/setup-postgres.sh").read_text()
    )
    assert server["BIND_ON_IP"] == "0.0.0.0"  # else it binds the container's address, and the health check's localhost fails
    assert server["POSTGRES_PWD"] == "a-test-password" == environment(services["temporal-schema"])["SQL_PASSWORD"]
    assert environment(services["postgresql"])["POSTGRES_PASSWORD"] == "a-test-password"
    mounts = {target: source for source, target, *_ in (v.split(":") for v in services["temporal"]["volumes"])}
    folder, name = server["DYNAMIC_CONFIG_FILE_PATH"].rsplit("/", 1)
    assert (PROJECT_ROOT / mounts[folder] / name).is_file()
    names = set(services)
    for service in services.values():
        for key, value in environment(service).items():
            if key in ("TEMPORAL_ADDRESS", "POSTGRES_SEEDS"):
                assert value.split(":")[0] in names, f"{key}={value} names no service"
