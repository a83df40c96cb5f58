"""The deployment artefacts pass their tools' checks: the image's Dockerfile with hadolint, the
compose file against the Compose Specification's schema, each Kustomize overlay rendered by
``kubectl kustomize`` and validated against the Kubernetes schemas (kubernetes-validate,
strict), the alert rules and the compose Prometheus configuration with ``promtool``; and the
manifests keep what the operations guide promises (probes, grace period, one beat, a migrations
Job)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent
OVERLAYS = ["small", "production"]


def run(*argv: str | Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, input=stdin, timeout=120)


def tool(name: str) -> str:
    """The development lock's (pinned) where it has one, else the machine's (promtool)."""
    found = str(BIN / name) if (BIN / name).exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} not found (.ci/run installs it)")
    return found


def render(overlay: str) -> list[dict]:
    done = run(tool("kubectl"), "kustomize", DEPLOY / "kubernetes" / "overlays" / overlay)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


@pytest.mark.parametrize(
    "dockerfile",
    ["Dockerfile", *(f"offline/{n}.Dockerfile" for n in ("python", "postgres", "redis", "prometheus"))],
)
def test_dockerfile_is_hadolint_clean(dockerfile):
    done = run(tool("hadolint"), DEPLOY / dockerfile)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def compose_services(path: Path) -> dict[str, dict]:
    """The services of a compose file, which is valid against the Compose Specification."""
    schema = ROOT / "tests" / "deploy" / "schemas" / "compose-spec.json"
    done = run(tool("check-jsonschema"), "--schemafile", schema, path)
    assert done.returncode == 0, done.stdout + done.stderr
    return yaml.safe_load(path.read_text())["services"]


def test_compose_file_is_valid_against_the_compose_specification():
    services = compose_services(DEPLOY / "compose" / "compose.yaml")
    assert services["gateway"]["deploy"]["replicas"] == 2
    assert services["beat"]["deploy"]["replicas"] == 1
    assert services["gateway"]["depends_on"]["applyconfig"] == {"condition": "service_completed_successfully"}
    assert services["applyconfig"]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    roles = {name: s["command"] for name, s in services.items() if s.get("build")}
    assert roles == {
        "migrate": ["migrate"],
        "applyconfig": ["applyconfig"],
        "gateway": ["serve"],
        "worker": ["worker"],
        "beat": ["beat"],
    }
    assert services["gateway"]["environment"]["SECRET_KEY_FILE"] == "/run/secrets/secret_key"
    # the registry-less override (deploy/offline) is a valid Compose file over the same services
    offline = compose_services(DEPLOY / "offline" / "compose.offline.yaml")
    assert set(offline) == set(roles)
    assert {s["environment"]["OTEL_SDK_DISABLED"] for s in offline.values()} == {"true"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kustomize_overlay_renders_and_is_valid_against_the_kubernetes_schemas(overlay, tmp_path):
    docs = render(overlay)
    rendered = tmp_path / f"{overlay}.yaml"
    rendered.write_text(yaml.safe_dump_all(docs))
    done = run(tool("kubernetes-validate"), "--strict", rendered)
    assert done.returncode == 0, done.stdout + done.stderr
    # the one custom resource has no schema there: its shape is checked here
    assert "ServiceMonitor" in done.stdout + done.stderr
    [monitor] = by_kind(docs, "ServiceMonitor").values()
    assert monitor["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "15s"}]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_manifests_keep_probes_grace_one_beat_and_the_jobs(overlay):
    docs = render(overlay)
    deployments = by_kind(docs, "Deployment")
    gateway = deployments["llm-gateway"]["spec"]["template"]["spec"]
    [container] = gateway["containers"]
    assert container["args"] == ["serve"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/live"
    assert set(container["resources"]) == {"requests", "limits"}
    # longer than the usage writer's drain at exit (15 s) after the preStop pause
    assert gateway["terminationGracePeriodSeconds"] >= 60
    beat = deployments["llm-gateway-beat"]["spec"]
    assert (beat["replicas"], beat["strategy"]["type"]) == (1, "Recreate")
    assert deployments["llm-gateway-worker"]["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "worker"
    ]
    jobs = by_kind(docs, "Job")
    assert {name: j["spec"]["template"]["spec"]["containers"][0]["args"] for name, j in jobs.items()} == {
        "llm-gateway-migrate": ["migrate"],
        "llm-gateway-applyconfig": ["applyconfig"],
    }
    hpa = next(iter(by_kind(docs, "HorizontalPodAutoscaler").values()))
    pdb = next(iter(by_kind(docs, "PodDisruptionBudget").values()))
    assert hpa["spec"]["minReplicas"] > pdb["spec"]["minAvailable"]
    assert {"Service", "Ingress", "ConfigMap"} <= {d["kind"] for d in docs}


def test_alert_rules_and_the_compose_prometheus_configuration_pass_promtool(tmp_path):
    promtool = tool("promtool")
    rules = run(promtool, "check", "rules", DEPLOY / "prometheus" / "alerts.yml")
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert "SUCCESS: 10 rules found" in rules.stdout
    config = (DEPLOY / "compose" / "prometheus.yml").read_text()
    shutil.copy(DEPLOY / "prometheus" / "alerts.yml", tmp_path / "alerts.yml")
    (tmp_path / "prometheus.yml").write_text(config.replace("/etc/prometheus/alerts.yml", "alerts.yml"))
    checked = run(promtool, "check", "config", tmp_path / "prometheus.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize(
    "script",
    [
        "entrypoint.sh",
        "compose/make-secrets.sh",
        "offline/build-images.sh",
        "offline/postgres-entrypoint.sh",
        "offline/redis-entrypoint.sh",
    ],
)
def test_entrypoint_is_valid_posix_shell(script):
    done = run("sh", "-n", DEPLOY / script)
    assert (done.returncode, done.stderr) == (0, "")


def test_the_entrypoint_reads_secret_files_but_leaves_the_settings_own_to_them(tmp_path):
    """``NAME_FILE`` sets ``NAME``, except for the files the settings read (and follow as they
    rotate) themselves: a value copied at start would win over the rotated file."""
    files = {
        "SOME_TOKEN": "token-value",
        "SECRET_KEY": "s3cret",
        "REDIS_PASSWORD": "pw",
        "DATABASE_URL": "pg://",
    }
    env = {"PATH": "/usr/bin:/bin"}
    for name, value in files.items():
        path = tmp_path / name.lower()
        path.write_text(value + "\n")
        env[f"{name}_FILE"] = str(path)
    done = subprocess.run(
        ["sh", str(DEPLOY / "entrypoint.sh"), "env"], env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    names = {line.partition("=")[0]: line.partition("=")[2] for line in done.stdout.splitlines()}
    assert names["SOME_TOKEN"] == "token-value"
    assert {"SECRET_KEY", "REDIS_PASSWORD", "DATABASE_URL"} & set(names) == set()
    assert names["SECRET_KEY_FILE"] == str(tmp_path / "secret_key")


def test_the_image_copies_every_package_the_settings_install():
    """Each of the project's own apps (and its package) is copied into the image and let through
    the build context's ignore file; a new app left out of either fails to import in the image."""
    from django.conf import settings

    own = sorted(
        {app.split(".")[0] for app in settings.INSTALLED_APPS if (ROOT / app.split(".")[0]).is_dir()}
    )
    assert own == ["accounting", "gateway_site", "providers", "quotas", "stored_responses"]
    copied = {
        line.split()[1]
        for line in (DEPLOY / "Dockerfile").read_text().splitlines()
        if line.startswith("COPY ")
    }
    admitted = {
        line[1:]
        for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    for package in [*own, "routing", "templates"]:
        assert package in copied, package
        assert package in admitted, package
