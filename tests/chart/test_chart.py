"""charts/overseer: labels, the restricted pod, least-privilege RBAC, values schema, lint, drift."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from overseer.operator.settings import Settings
from tests.chart.conftest import CHART, ROOT, Render, Rendered
from tests.support.cluster import Kube

# Value sets that change which objects exist; every test of "all objects" runs on each.
VARIANTS: dict[str, dict[str, Any] | None] = {
    "defaults": None,
    "cluster-wide": {"clusterWide": True},
    "watching two namespaces": {"watchNamespaces": ["team-a", "team-b"]},
    "existing service account": {"serviceAccount": {"create": False, "name": "ops"}},
    "no rbac, debug, scheduling": {
        "rbac": {"create": False},
        "commonLabels": {"team": "ops"},
        "operator": {
            "logLevel": "debug",
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "tolerations": [{"key": "ops", "operator": "Exists", "effect": "NoSchedule"}],
            "extraEnv": [{"name": "TZ", "value": "UTC"}],
            "hostAliases": [{"ip": "10.96.0.1", "hostnames": ["kubernetes.default.svc"]}],
        },
    },
    "kubernetes auth, a store of one's own": {
        "api": {"auth": {"mode": "kubernetes"}},
        "archive": {
            "s3": {
                "endpoint": "https://s3.eu-west-1.amazonaws.com",
                "credentials": {"existingSecret": "archive-keys"},
            }
        },
    },
    "a store of one's own, default credential chain": {
        "archive": {"s3": {"endpoint": "https://minio.example.com:9000"}},
    },
    "no api": {"api": {"enabled": False}},
}
STANDARD_LABELS = {
    "app.kubernetes.io/name": "overseer",
    "app.kubernetes.io/instance": "overseer",
    "app.kubernetes.io/managed-by": "Helm",
}


@pytest.fixture(params=list(VARIANTS), scope="module")
def variant(request: pytest.FixtureRequest, render: Render) -> Rendered:
    rendered = render(VARIANTS[request.param])
    assert rendered.returncode == 0, rendered.stderr
    return rendered


def workloads(rendered: Rendered) -> list[dict[str, Any]]:
    """The objects that run pods: Deployments (operator, api) and StatefulSets (store)."""
    return rendered.of_kind("Deployment") + rendered.of_kind("StatefulSet")


def deployment(rendered: Rendered, component: str = "operator") -> dict[str, Any]:
    """The Deployment (or StatefulSet) of a component (operator, api, store)."""
    (found,) = [
        d
        for d in workloads(rendered)
        if d["metadata"]["labels"]["app.kubernetes.io/component"] == component
    ]
    return found


def pod_spec(rendered: Rendered, component: str = "operator") -> dict[str, Any]:
    spec: dict[str, Any] = deployment(rendered, component)["spec"]["template"]["spec"]
    return spec


def container(rendered: Rendered, name: str, component: str = "operator") -> dict[str, Any]:
    (found,) = [c for c in pod_spec(rendered, component)["containers"] if c["name"] == name]
    return found


def operator_container(rendered: Rendered) -> dict[str, Any]:
    return container(rendered, "operator")


def of_component(objects: list[dict[str, Any]], component: str) -> list[dict[str, Any]]:
    return [
        o for o in objects if o["metadata"]["labels"]["app.kubernetes.io/component"] == component
    ]


# --- labels ---------------------------------------------------------------------------


def test_every_object_carries_the_standard_labels(variant: Rendered) -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    for obj in variant.objects:
        labels = obj["metadata"].get("labels", {})
        where = f"{obj['kind']} {obj['metadata']['name']}"
        for key, value in STANDARD_LABELS.items():
            assert labels.get(key) == value, f"{where}: label {key}"
        assert labels.get("app.kubernetes.io/version") == chart["appVersion"], where
        assert labels.get("helm.sh/chart") == f"overseer-{chart['version']}", where


def test_pods_carry_the_labels_their_deployment_selects(variant: Rendered) -> None:
    for found in workloads(variant):
        selector = found["spec"]["selector"]["matchLabels"]
        labels = found["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items()
        component = found["metadata"]["labels"]["app.kubernetes.io/component"]
        assert selector["app.kubernetes.io/component"] == component


def test_common_labels_reach_every_object(render: Render) -> None:
    rendered = render({"commonLabels": {"team": "ops"}})
    assert all(o["metadata"]["labels"]["team"] == "ops" for o in rendered.objects)


# --- the operator's pod -----------------------------------------------------------------


def test_every_pod_passes_the_restricted_pod_security_standard(variant: Rendered) -> None:
    for found in workloads(variant):
        spec = found["spec"]["template"]["spec"]
        for each in spec.get("initContainers", []) + spec["containers"]:
            assert_restricted(spec, each)


def assert_restricted(spec: dict[str, Any], container: dict[str, Any]) -> None:
    pod = spec["securityContext"]
    context = container["securityContext"]
    # runAsNonRoot, on the pod or the container, and never user 0
    assert pod.get("runAsNonRoot") is True or context.get("runAsNonRoot") is True
    assert context.get("runAsUser", pod.get("runAsUser")) != 0
    # no privilege escalation, every capability dropped, the runtime's seccomp profile
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    assert not context["capabilities"].get("add")
    profile = context.get("seccompProfile", pod.get("seccompProfile"))
    assert profile == {"type": "RuntimeDefault"}
    # baseline: no host namespaces, ports or paths, nothing privileged
    assert not any(spec.get(k) for k in ("hostNetwork", "hostPID", "hostIPC"))
    assert not context.get("privileged")
    assert not any(p.get("hostPort") for p in container.get("ports", []))
    assert {next(iter(set(v) - {"name"})) for v in spec["volumes"]} <= {
        "emptyDir",
        "configMap",
        "secret",
        "projected",
        "persistentVolumeClaim",
    }
    assert context["readOnlyRootFilesystem"] is True


def test_the_operator_has_its_probe_caches_and_token(render: Render) -> None:
    rendered = render()
    spec, container = pod_spec(rendered), operator_container(rendered)
    assert spec["automountServiceAccountToken"] is True
    (account,) = of_component(rendered.of_kind("ServiceAccount"), "operator")
    assert spec["serviceAccountName"] == account["metadata"]["name"]
    assert container["image"] == "localhost/overseer/operator:dev"
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["command"] == ["python", "-m", "overseer.operator"]
    assert "args" not in container
    probe = container["livenessProbe"]["httpGet"]
    port = next(p for p in container["ports"] if p["name"] == probe["port"])
    assert (probe["path"], port["containerPort"]) == ("/healthz", 8080)
    assert container["readinessProbe"]["httpGet"]["port"] == probe["port"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert set(mounts) == {"/var/cache/overseer", "/tmp"}
    assert all("emptyDir" in volumes[name] for name in mounts.values())
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["OVERSEER_CACHE_DIR"] == "/var/cache/overseer"
    assert env["OVERSEER_NAMESPACES"] == "overseer-system"
    assert (env["OVERSEER_GIT_TIMEOUT"], env["OVERSEER_RETRY_MIN"], env["OVERSEER_RETRY_MAX"]) == (
        "120s",
        "5s",
        "5m",
    )
    assert (env["OVERSEER_FINISHED_JOB_TTL"], env["OVERSEER_EXECUTION_TTL"]) == ("1h", "")


def test_retention_values_reach_the_operator(render: Render) -> None:
    rendered = render(
        {
            "jobs": {
                "keepFinishedFor": "0",
                "executionTTL": "30d",
                "scheduleStartingDeadline": "none",
            }
        }
    )
    env = {e["name"]: e.get("value") for e in operator_container(rendered)["env"]}
    assert (env["OVERSEER_FINISHED_JOB_TTL"], env["OVERSEER_EXECUTION_TTL"]) == ("0", "30d")
    assert env["OVERSEER_SCHEDULE_STARTING_DEADLINE"] == "none"


def test_values_reach_the_pod(render: Render) -> None:
    rendered = render(VARIANTS["no rbac, debug, scheduling"])
    spec, container = pod_spec(rendered), operator_container(rendered)
    assert "--verbose" in container["args"]
    assert container["env"][-1] == {"name": "TZ", "value": "UTC"}
    assert spec["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert spec["tolerations"][0]["key"] == "ops"
    assert spec["hostAliases"][0]["hostnames"] == ["kubernetes.default.svc"]


def test_webhook_values_reach_the_operator_as_settings_it_accepts(render: Render) -> None:
    # Without values: the generated signing secret, private targets refused
    env = {e["name"]: e for e in operator_container(render())["env"]}
    assert env["OVERSEER_WEBHOOK_SECRET"]["valueFrom"] == {
        "secretKeyRef": {"name": "overseer-webhooks", "key": "secret"}
    }
    # the metadata URL is the API's Service, never localhost
    assert env["OVERSEER_API_URL"]["value"] == "http://overseer-api.overseer-system.svc:80"
    env = {e["name"]: e for e in operator_container(render(VARIANTS["no api"]))["env"]}
    assert "OVERSEER_API_URL" not in env
    assert env["OVERSEER_WEBHOOK_ALLOW_PRIVATE"]["value"] == "false"
    rendered = render(
        {
            "webhooks": {
                "apiUrl": "https://overseer.example.com",
                "signingSecret": {"existingSecret": "overseer-webhooks", "key": "hmac"},
                "allowedNetworks": ["10.20.0.0/16", "fd00::/8"],
                "serviceCidrs": ["10.96.0.0/12"],
                "timeout": "3s",
                "signing": {
                    "secretName": "team-hooks",
                    "key": "hmac",
                    "fallbackToOperatorSecret": True,
                },
            }
        }
    )
    env = {e["name"]: e for e in operator_container(rendered)["env"]}
    # the signing secret comes from the Secret, never as a plain value
    assert env["OVERSEER_WEBHOOK_SECRET"] == {
        "name": "OVERSEER_WEBHOOK_SECRET",
        "valueFrom": {"secretKeyRef": {"name": "overseer-webhooks", "key": "hmac"}},
    }
    values = {name: e["value"] for name, e in env.items() if "value" in e}
    settings = Settings.from_env({**values, "OVERSEER_WEBHOOK_SECRET": "s3cret"}).webhooks
    assert settings.api_url == "https://overseer.example.com"
    assert [str(n) for n in settings.url_policy.allowed] == ["10.20.0.0/16", "fd00::/8"]
    assert [str(n) for n in settings.url_policy.service_cidrs] == ["10.96.0.0/12"]
    assert (settings.timeout, settings.url_policy.allow_private) == (3.0, False)
    assert (settings.signing_secret, settings.signing_key, settings.fallback) == (
        "team-hooks",
        "hmac",
        True,
    )


def test_each_namespace_signs_with_its_own_secret_unless_the_fallback_is_asked_for(
    render: Render,
) -> None:
    env = {e["name"]: e.get("value") for e in operator_container(render())["env"]}
    settings = Settings.from_env({k: v for k, v in env.items() if v is not None}).webhooks
    assert (settings.signing_secret, settings.signing_key, settings.fallback) == (
        "overseer-webhook-signing",
        "secret",
        False,
    )


def generated_secrets(rendered: Rendered) -> list[dict[str, Any]]:
    return [s for s in rendered.of_kind("Secret") if s["metadata"]["name"] == "overseer-webhooks"]


def test_default_values_generate_a_signing_secret_the_operator_reads(render: Render) -> None:
    # Given the chart's default values, twice (helm template: no release to look up)
    first, second = render(), render()
    [secret] = generated_secrets(first)
    [again] = generated_secrets(second)
    # Then a Secret holds a Standard Webhooks secret of 32 random bytes
    assert secret["type"] == "Opaque"
    assert secret["metadata"]["namespace"] == "overseer-system"
    assert secret["metadata"]["labels"]["app.kubernetes.io/instance"] == "overseer"
    text = base64.b64decode(secret["data"]["secret"]).decode()
    assert text.startswith("whsec_")
    assert len(base64.b64decode(text.removeprefix("whsec_"), validate=True)) == 32
    assert again["data"] != secret["data"], "random per new release"
    # And the operator signs with it, and accepts it at start-up
    env = {e["name"]: e for e in operator_container(first)["env"]}
    ref = env["OVERSEER_WEBHOOK_SECRET"]["valueFrom"]["secretKeyRef"]
    assert (ref["name"], ref["key"]) == ("overseer-webhooks", "secret")
    settings = Settings.from_env({"OVERSEER_WEBHOOK_SECRET": text}).webhooks
    assert settings.secret == text
    # And the template keeps an installed release's secret across upgrades (lookup)
    template = (CHART / "templates" / "webhook-secret.yaml").read_text()
    assert 'lookup "v1" "Secret" .Release.Namespace' in template


def test_a_secret_of_ones_own_or_none_generates_nothing(render: Render) -> None:
    own = render({"webhooks": {"signingSecret": {"existingSecret": "mine", "key": "k"}}})
    assert generated_secrets(own) == []
    env = {e["name"]: e for e in operator_container(own)["env"]}
    assert env["OVERSEER_WEBHOOK_SECRET"]["valueFrom"]["secretKeyRef"]["name"] == "mine"
    off = render({"webhooks": {"signingSecret": {"generate": False}}})
    assert generated_secrets(off) == []
    env = {e["name"]: e for e in operator_container(off)["env"]}
    assert "OVERSEER_WEBHOOK_SECRET" not in env


def test_the_service_account_token_is_mounted_only_where_asked(render: Render) -> None:
    for account in render().of_kind("ServiceAccount"):
        assert account["automountServiceAccountToken"] is False
    rendered = render(VARIANTS["existing service account"])
    assert of_component(rendered.of_kind("ServiceAccount"), "operator") == []
    assert pod_spec(rendered)["serviceAccountName"] == "ops"


# --- RBAC -------------------------------------------------------------------------------


def grants(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) triples; wildcards stay visible as '*'."""
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def expand(group: str, resources: str, verbs: str) -> set[tuple[str, str, str]]:
    return {(group, r, v) for r in resources.split() for v in verbs.split()}


NAMESPACED = (
    expand("overseer.dev", "overseerrepositories", "get list watch patch")
    | expand("overseer.dev", "overseerrepositories/status", "patch")
    | expand("overseer.dev", "overseerjobs", "get list watch create patch delete")
    | expand("", "configmaps", "get list create delete")
    | expand("", "secrets", "get create")
    | expand("", "events", "create")
    | expand("overseer.dev", "overseerexecutions", "get list watch patch delete")
    | expand("overseer.dev", "overseerexecutions/status overseerjobs/status", "patch")
    | expand("batch", "jobs", "get list watch create delete")
    | expand("", "pods", "get list watch")
    | expand("", "pods/log", "get")
    | expand("", "pods/exec", "create get")
    | expand("", "serviceaccounts", "create")  # the executions' pods' overseer-execution
    | expand("overseer.dev", "overseerexecutions", "create")  # the scheduler
)
CRDS = expand("apiextensions.k8s.io", "customresourcedefinitions", "list watch")
NAMESPACES = expand("", "namespaces", "list watch")
SERVICE_RANGES = expand("networking.k8s.io", "servicecidrs", "list") | expand("", "services", "get")


LEASE = expand("coordination.k8s.io", "leases", "create get update")


def operator_roles(rendered: Rendered, kind: str) -> list[dict[str, Any]]:
    """The operator's Roles (or bindings) but those of its leader election."""
    return [
        r
        for r in of_component(rendered.of_kind(kind), "operator")
        if not r["metadata"]["name"].endswith("-leader-election")
    ]


def leader_election_roles(rendered: Rendered) -> dict[str, dict[str, Any]]:
    return {
        r["metadata"]["namespace"]: r
        for r in rendered.of_kind("Role")
        if r["metadata"]["name"] == "overseer-operator-leader-election"
    }


def test_leases_are_granted_where_the_operator_elects_its_leader(render: Render) -> None:
    # watching the cluster: the Lease is in the release's namespace, which the env says
    rendered = render()
    roles = leader_election_roles(rendered)
    assert set(roles) == {"overseer-system"}
    rules = roles["overseer-system"]["rules"]
    assert grants(rules) == LEASE
    # get and update only the one Lease (create cannot be limited by name)
    assert {
        v for r in rules if r.get("resourceNames") == ["overseer-operator"] for v in r["verbs"]
    } == {
        "get",
        "update",
    }
    env = {e["name"]: e.get("value") for e in operator_container(rendered)["env"]}
    assert env["OVERSEER_LEASE_NAMESPACE"] == "overseer-system"
    # watching two namespaces: one Lease in each
    watching = render(VARIANTS["watching two namespaces"])
    assert set(leader_election_roles(watching)) == {"team-a", "team-b"}
    bindings = [
        b for b in watching.of_kind("RoleBinding") if b["metadata"]["name"].endswith("-election")
    ]
    assert {b["metadata"]["namespace"] for b in bindings} == {"team-a", "team-b"}
    assert all(b["subjects"][0]["name"] == "overseer-operator" for b in bindings)


def test_two_replicas_by_default_replaced_one_at_a_time(render: Render) -> None:
    rendered = render()
    operator = deployment(rendered)
    assert operator["spec"]["replicas"] == 2
    # a new replica stands by beside the old ones until the leader releases the Lease
    assert operator["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    env = {e["name"]: e.get("value") for e in operator_container(rendered)["env"]}
    assert (
        env["OVERSEER_LEASE_DURATION"],
        env["OVERSEER_LEASE_RENEW_DEADLINE"],
        env["OVERSEER_LEASE_RETRY_PERIOD"],
    ) == ("15s", "10s", "2s")
    assert deployment(render({"operator": {"replicaCount": 1}}))["spec"]["replicas"] == 1


def test_metrics_have_a_service_and_a_service_monitor_only_when_asked(render: Render) -> None:
    rendered = render()
    services = {s["metadata"]["name"]: s for s in rendered.of_kind("Service")}
    metrics = services["overseer-operator-metrics"]
    assert metrics["spec"]["ports"] == [
        {"name": "metrics", "port": 8080, "targetPort": "metrics", "protocol": "TCP"}
    ]
    labels = deployment(rendered)["spec"]["template"]["metadata"]["labels"]
    assert metrics["spec"]["selector"].items() <= labels.items()
    env = {e["name"]: e.get("value") for e in operator_container(rendered)["env"]}
    assert env["OVERSEER_METRICS_PORT"] == "8080"
    assert rendered.of_kind("ServiceMonitor") == []
    monitored = render(
        {
            "operator": {
                "metrics": {
                    "port": 9100,
                    "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
                }
            }
        }
    )
    monitor = monitored.one("ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["endpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "30s"}
    ]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    ports = operator_container(monitored)["ports"]
    assert {"name": "metrics", "containerPort": 9100, "protocol": "TCP"} in ports


def test_cluster_wide_rbac_is_exactly_what_the_operator_uses(render: Render) -> None:
    rendered = render({"clusterWide": True})
    assert grants(rendered.one("ClusterRole")["rules"]) == NAMESPACED | CRDS | SERVICE_RANGES
    assert operator_roles(rendered, "Role") == []
    env = {e["name"]: e.get("value") for e in operator_container(rendered)["env"]}
    assert env["OVERSEER_NAMESPACES"] == ""
    binding = rendered.one("ClusterRoleBinding")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "overseer-operator", "namespace": "overseer-system"}
    ]


def test_watched_namespaces_get_roles_and_only_cluster_scoped_reads_stay_cluster_wide(
    render: Render,
) -> None:
    rendered = render(VARIANTS["watching two namespaces"])
    assert grants(rendered.one("ClusterRole")["rules"]) == CRDS | NAMESPACES | SERVICE_RANGES
    roles = {
        r["metadata"]["namespace"]: grants(r["rules"]) for r in operator_roles(rendered, "Role")
    }
    assert roles == {"team-a": NAMESPACED, "team-b": NAMESPACED}
    bindings = {b["metadata"]["namespace"] for b in operator_roles(rendered, "RoleBinding")}
    assert bindings == {"team-a", "team-b"}
    env = {e["name"]: e.get("value") for e in operator_container(rendered)["env"]}
    assert env["OVERSEER_NAMESPACES"] == "team-a,team-b"


def test_no_wildcards_and_secrets_are_never_listed(variant: Rendered) -> None:
    for role in variant.of_kind("ClusterRole") + variant.of_kind("Role"):
        for group, resource, verb in grants(role["rules"]):
            assert "*" not in (group, resource, verb), role["metadata"]["name"]
            if resource == "secrets":
                assert verb in {"get", "create"}


def test_service_ranges_are_read_only_when_not_given(render: Render) -> None:
    rules = render({"clusterWide": True}).one("ClusterRole")["rules"]
    services = [r for r in rules if r["resources"] == ["services"]]
    assert services == [
        {
            "apiGroups": [""],
            "resources": ["services"],
            "resourceNames": ["kubernetes"],
            "verbs": ["get"],
        }
    ]
    given = render({"webhooks": {"serviceCidrs": ["10.96.0.0/12"]}})
    assert not grants(given.one("ClusterRole")["rules"]) & SERVICE_RANGES


def test_rbac_can_be_left_to_the_administrators(render: Render) -> None:
    rendered = render({"rbac": {"create": False}})
    kinds = {o["kind"] for o in rendered.objects}
    assert kinds.isdisjoint({"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"})


# --- the values schema ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"operator": {"replicaCount": "two"}}, "/operator/replicaCount"),
        ({"operator": {"replicaCount": 6}}, "/operator/replicaCount"),
        ({"api": {"placement": "deployment"}}, "placement"),
        ({"operator": {"archive": {"existingClaim": "output"}}}, "archive"),
        ({"archive": {"s3": {"endpoint": "s3.amazonaws.com"}}}, "/archive/s3/endpoint"),
        ({"archive": {"s3": {"endpoint": "https://s3.example.com/a?b"}}}, "/archive/s3/endpoint"),
        ({"archive": {"s3": {"bucket": "Output_Bucket"}}}, "/archive/s3/bucket"),
        ({"archive": {"s3": {"prefix": "/rooted"}}}, "/archive/s3/prefix"),
        ({"archive": {"s3": {"pathStyle": "yes"}}}, "/archive/s3/pathStyle"),
        (
            {"archive": {"s3": {"credentials": {"existingSecret": "Keys"}}}},
            "/archive/s3/credentials",
        ),
        ({"store": {"persistence": {"size": "big"}}}, "/store/persistence/size"),
        ({"store": {"image": {"pullPolicy": "Sometimes"}}}, "/store/image/pullPolicy"),
        ({"api": {"replicaCount": "two"}}, "/api/replicaCount"),
        ({"api": {"auth": {"mode": "oidc"}}}, "/api/auth/mode"),
        ({"api": {"auth": {"cacheTTL": "briefly"}}}, "/api/auth/cacheTTL"),
        ({"api": {"idempotency": {"ttl": "a day"}}}, "/api/idempotency/ttl"),
        ({"api": {"service": {"port": 0}}}, "/api/service/port"),
        ({"api": {"defaultNamespace": "Team_A"}}, "/api/defaultNamespace"),
        ({"api": {"gitHooks": {"enabled": "yes"}}}, "/api/gitHooks/enabled"),
        ({"api": {"ingress": {"enabled": True}}}, "/api/ingress/host"),
        ({"api": {"ingress": {"host": "https://overseer.example.com"}}}, "/api/ingress/host"),
        ({"api": {"ingress": {"host": "Overseer Example"}}}, "/api/ingress/host"),
        ({"api": {"ingress": {"className": "Nginx_Class"}}}, "/api/ingress/className"),
        ({"api": {"ingress": {"tls": True}}}, "tls"),
        ({"api": {"publicUrl": "overseer.example.com"}}, "/api/publicUrl"),
        ({"api": {"replicas": 2}}, "replicas"),
        ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
        ({"jobs": {"imagePullPolicy": "Sometimes"}}, "/jobs/imagePullPolicy"),
        ({"jobs": {"libraryImage": "has space:dev"}}, "/jobs/libraryImage"),
        ({"jobs": {"keepFinishedFor": "forever"}}, "/jobs/keepFinishedFor"),
        ({"jobs": {"executionTTL": "0"}}, "/jobs/executionTTL"),
        ({"jobs": {"scheduleStartingDeadline": "never"}}, "/jobs/scheduleStartingDeadline"),
        ({"operator": {"logLevel": "trace"}}, "/operator/logLevel"),
        ({"operator": {"gitTimeout": "2 minutes"}}, "/operator/gitTimeout"),
        ({"operator": {"retry": {"min": 5}}}, "/operator/retry/min"),
        ({"operator": {"timeouts": {"kube": "30"}}}, "/operator/timeouts/kube"),
        ({"operator": {"timeouts": {"logRead": "five minutes"}}}, "/operator/timeouts/logRead"),
        ({"operator": {"timeouts": {"watch": 300}}}, "/operator/timeouts/watch"),
        ({"operator": {"timeouts": {"read": "5m"}}}, "read"),
        ({"operator": {"resyncInterval": "often"}}, "/operator/resyncInterval"),
        ({"watchNamespaces": ["Team_A"]}, "/watchNamespaces/0"),
        ({"watchNamespaces": ["a", "a"]}, "/watchNamespaces"),
        ({"operator": {"resources": {"limits": {"memory": "lots"}}}}, "/operator/resources"),
        ({"replicas": 1}, "replicas"),
        ({"operator": {"replica": 1}}, "replica"),
        ({"serviceAccount": {"create": "yes"}}, "/serviceAccount/create"),
        ({"webhooks": {"timeout": "soon"}}, "/webhooks/timeout"),
        ({"webhooks": {"allowPrivate": "yes"}}, "/webhooks/allowPrivate"),
        ({"webhooks": {"allowedNetworks": ["ten/8"]}}, "/webhooks/allowedNetworks/0"),
        ({"webhooks": {"apiUrl": "overseer.example.com"}}, "/webhooks/apiUrl"),
        (
            {"webhooks": {"signingSecret": {"existingSecret": "Bad_Name"}}},
            "/webhooks/signingSecret",
        ),
    ],
    ids=lambda v: json.dumps(v) if isinstance(v, dict) else "",
)
def test_bad_values_are_refused_naming_the_key(
    render: Render, values: dict[str, Any], complaint: str
) -> None:
    rendered = render(values)
    assert rendered.returncode != 0, f"accepted {values}"
    assert "schema" in rendered.stderr
    assert complaint in rendered.stderr, rendered.stderr


def test_an_existing_service_account_must_be_named(render: Render) -> None:
    rendered = render({"serviceAccount": {"create": False}})
    assert rendered.returncode != 0
    assert "serviceAccount.name" in rendered.stderr


# Kubernetes objects passed through as they are: their fields are Kubernetes', not ours.
KUBERNETES_TYPED = {
    "podSecurityContext",
    "securityContext",
    "operator.resources",
    "operator.affinity",
    "api.resources",
    "store.resources",
}


def schema_keys(node: dict[str, Any], path: str = "") -> Iterator[str]:
    """Paths of the chart's own keys: properties of closed objects, Kubernetes types left out."""
    if node.get("additionalProperties") is not False:
        return
    for name, child in node.get("properties", {}).items():
        key = f"{path}.{name}" if path else name
        if key == "global":
            continue
        yield key
        if key not in KUBERNETES_TYPED:
            yield from schema_keys(child, key)


def value_keys(values: dict[str, Any], path: str = "") -> Iterator[str]:
    for name, value in values.items():
        key = f"{path}.{name}" if path else name
        yield key
        if isinstance(value, dict) and value and key not in KUBERNETES_TYPED:
            yield from value_keys(value, key)


def test_values_yaml_and_the_schema_list_the_same_keys() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(schema_keys(schema)) == set(value_keys(values))


def test_every_key_of_values_yaml_is_documented() -> None:
    lines = (CHART / "values.yaml").read_text().splitlines()
    undocumented = []
    for number, line in enumerate(lines):
        stripped = line.lstrip()
        if not stripped or stripped.startswith(("#", "-")) or ":" not in stripped:
            continue
        indent = len(line) - len(stripped)
        is_section = stripped.endswith(":") and number + 1 < len(lines)
        documented = number > 0 and lines[number - 1].strip().startswith("#")
        # Keys inside a documented Kubernetes object (securityContext, resources) need no text.
        parent_typed = any(
            lines[i].strip().rstrip(":") in {"podSecurityContext", "securityContext", "resources"}
            and len(lines[i]) - len(lines[i].lstrip()) < indent
            for i in range(number)
            if lines[i].strip().endswith(":")
        )
        if not (documented or is_section or parent_typed):
            undocumented.append(stripped)
    assert undocumented == []


# --- lint and drift ---------------------------------------------------------------------


@pytest.mark.parametrize("variant_name", list(VARIANTS))
def test_helm_lint_passes(helm: str, tmp_path: Path, variant_name: str) -> None:
    args = [helm, "lint", "--strict", str(CHART), "--kube-version", "v1.34.0"]
    values = VARIANTS[variant_name]
    if values is not None:
        values_file = tmp_path / "values.yaml"
        values_file.write_text(yaml.safe_dump(values))
        args += ["--values", str(values_file)]
    result = subprocess.run(args, capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rendered_manifests_have_no_drift(helm: str) -> None:
    result = subprocess.run(
        ["bash", str(ROOT / "hack" / "render-manifests.sh"), "--check"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, "HELM": helm},
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_rendered_manifests_say_they_are_generated() -> None:
    text = (ROOT / "manifests" / "overseer.yaml").read_text()
    assert text.startswith("# Generated by hack/render-manifests.sh from charts/overseer")
    assert "do not edit" in text.splitlines()[0]


# --- against a real API server ------------------------------------------------------------


@pytest.mark.cluster
def test_the_api_server_admits_every_pod_under_restricted(render: Render, kube: Kube) -> None:
    # Given a namespace that enforces the restricted Pod Security Standard
    kube.cluster.run(
        "label",
        "namespace",
        kube.namespace,
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/enforce-version=latest",
    )
    # When a pod built from each of the chart's templates is created there (dry run)
    for workload in workloads(render()):
        template = workload["spec"]["template"]
        # A StatefulSet's pods get a volume per claim template, as its controller adds them.
        claims = [
            {"name": c["metadata"]["name"], "persistentVolumeClaim": {"claimName": "claim"}}
            for c in workload["spec"].get("volumeClaimTemplates", [])
        ]
        spec = {
            **template["spec"],
            "serviceAccountName": "default",
            "volumes": template["spec"].get("volumes", []) + claims,
        }
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": workload["metadata"]["name"],
                "labels": template["metadata"]["labels"],
            },
            "spec": spec,
        }
        result = kube.kubectl(
            "create", "--dry-run=server", "-f", "-", input=json.dumps(pod), check=False
        )
        # Then PodSecurity admission lets it in, without a warning
        assert result.returncode == 0, (workload["metadata"]["name"], result.stderr)
        assert "violate" not in result.stderr, result.stderr
