"""charts/overseer, the API's part: its Deployment, its Service, least-privilege RBAC, tokens."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from tests.chart.conftest import Render, Rendered
from tests.chart.test_chart import container, deployment, expand, grants, of_component, pod_spec

API_RULES = (
    expand("overseer.dev", "overseerrepositories overseerjobs overseerexecutions", "get list watch")
    | expand("overseer.dev", "overseerexecutions", "create")
    | expand("overseer.dev", "overseerjobs overseerrepositories overseerexecutions", "patch")
    | expand("overseer.dev", "overseerexecutions/status", "patch")  # delivery replays
    | expand("", "events", "create")
    | expand("coordination.k8s.io", "leases", "get list create update delete")
    # secret parameters (created with each execution, read by a repeat); push hooks
    | expand("", "secrets", "get create")
)
REVIEWS = expand("authentication.k8s.io", "tokenreviews", "create") | expand(
    "authorization.k8s.io", "subjectaccessreviews", "create"
)


def env_of(found: dict[str, Any]) -> dict[str, str | None]:
    return {e["name"]: e.get("value") for e in found["env"]}


def api_roles(rendered: Rendered) -> dict[str, set[tuple[str, str, str]]]:
    return {
        r["metadata"]["namespace"]: grants(r["rules"])
        for r in of_component(rendered.of_kind("Role"), "api")
    }


def test_the_api_runs_in_its_own_deployment_with_replicas_and_a_budget(render: Render) -> None:
    rendered = render()
    api_deployment = deployment(rendered, "api")
    assert api_deployment["spec"]["replicas"] == 2
    # the operator's pod runs the operator alone
    assert [c["name"] for c in pod_spec(rendered)["containers"]] == ["operator"]
    api = container(rendered, "api", "api")
    assert api["image"] == container(rendered, "operator")["image"]
    assert api["command"] == ["python", "-m", "overseer_api"]
    # probes on the API's own health routes
    assert api["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert api["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    # one replica at a time may go; the Service reaches the API's pods only
    budget = rendered.one("PodDisruptionBudget")
    assert budget["spec"]["maxUnavailable"] == 1
    selector = api_deployment["spec"]["selector"]["matchLabels"]
    assert budget["spec"]["selector"]["matchLabels"] == selector
    (service,) = of_component(rendered.of_kind("Service"), "api")
    assert service["spec"]["selector"] == selector
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert {"name": "http", "containerPort": 8000, "protocol": "TCP"} in api["ports"]
    # its own ServiceAccount, and no volume shared with the operator
    assert pod_spec(rendered, "api")["serviceAccountName"] == "overseer-api"
    accounts = {a["metadata"]["name"] for a in rendered.of_kind("ServiceAccount")}
    assert accounts == {"overseer-operator", "overseer-api"}
    assert {v["name"] for v in pod_spec(rendered, "api")["volumes"]} == {"api-tokens", "api-tmp"}


def test_the_api_role_holds_only_what_the_routes_use_where_it_serves(render: Render) -> None:
    rendered = render({"watchNamespaces": ["team-a", "team-b"]})
    assert api_roles(rendered) == {"team-a": API_RULES, "team-b": API_RULES}
    env = env_of(container(rendered, "api", "api"))
    assert (env["OVERSEER_API_NAMESPACE"], env["OVERSEER_API_NAMESPACES"]) == (
        "team-a",
        "team-a,team-b",
    )
    # bound to the API's own ServiceAccount
    for binding in of_component(rendered.of_kind("RoleBinding"), "api"):
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "overseer-api", "namespace": "overseer-system"}
        ]
    # token mode needs no cluster-wide rule
    assert of_component(rendered.of_kind("ClusterRole"), "api") == []


def test_without_push_hooks_the_api_keeps_only_the_secret_parameters_rule(render: Render) -> None:
    rendered = render({"api": {"gitHooks": {"enabled": False}}})
    assert api_roles(rendered) == {"overseer-system": API_RULES}
    assert env_of(container(rendered, "api", "api"))["OVERSEER_API_GIT_HOOKS"] == "false"


def test_kubernetes_mode_may_review_tokens_and_access_and_has_no_token_secret(
    render: Render,
) -> None:
    rendered = render({"api": {"auth": {"mode": "kubernetes"}}})
    (role,) = of_component(rendered.of_kind("ClusterRole"), "api")
    assert grants(role["rules"]) == REVIEWS
    (binding,) = of_component(rendered.of_kind("ClusterRoleBinding"), "api")
    assert binding["subjects"][0]["name"] == "overseer-api"
    assert api_secrets(rendered) == []
    api = container(rendered, "api", "api")
    assert env_of(api)["OVERSEER_API_AUTH"] == "kubernetes"
    assert env_of(api)["OVERSEER_API_AUTH_CACHE_TTL"] == "10s"
    assert "OVERSEER_API_TOKENS_FILE" not in env_of(api)


def api_secrets(rendered: Rendered) -> list[dict[str, Any]]:
    """The API's Secrets (not the webhook signing one, not the store's)."""
    return of_component(rendered.of_kind("Secret"), "api")


def test_a_generated_admin_token_is_stored_hashed_for_the_api(render: Render) -> None:
    rendered = render()
    [secret] = api_secrets(rendered)
    assert secret["metadata"]["name"] == "overseer-api-tokens"
    token = base64.b64decode(secret["data"]["admin-token"]).decode()
    assert len(token) >= 32
    tokens = json.loads(base64.b64decode(secret["data"]["tokens.json"]))
    assert tokens == {
        "admin": {"sha256": hashlib.sha256(token.encode()).hexdigest(), "scopes": ["admin"]}
    }
    # only the hashes reach the pod
    volumes = {v["name"]: v for v in pod_spec(rendered, "api")["volumes"]}
    assert volumes["api-tokens"]["secret"] == {
        "secretName": "overseer-api-tokens",
        "items": [{"key": "tokens.json", "path": "tokens.json"}],
    }
    api = container(rendered, "api", "api")
    assert env_of(api)["OVERSEER_API_TOKENS_FILE"] == "/etc/overseer/api-tokens/tokens.json"
    # a new render (a new install) draws a new token
    assert api_secrets(render())[0]["data"]["admin-token"] != secret["data"]["admin-token"]


def test_an_existing_tokens_secret_is_used_and_none_created(render: Render) -> None:
    rendered = render({"api": {"auth": {"existingSecret": "our-tokens"}}})
    assert api_secrets(rendered) == []
    volumes = {v["name"]: v for v in pod_spec(rendered, "api")["volumes"]}
    assert volumes["api-tokens"]["secret"]["secretName"] == "our-tokens"


def test_without_the_api_nothing_of_it_is_rendered(render: Render) -> None:
    rendered = render({"api": {"enabled": False}})
    assert of_component(rendered.objects, "api") == []


def test_no_ingress_unless_asked(render: Render) -> None:
    rendered = render()
    assert rendered.of_kind("Ingress") == []
    assert "OVERSEER_API_PUBLIC_URL" not in env_of(container(rendered, "api", "api"))


def test_the_ingress_serves_the_api_at_its_host_and_its_urls_say_so(render: Render) -> None:
    annotations = {"nginx.ingress.kubernetes.io/proxy-buffering": "off"}
    ingress_values = {
        "enabled": True,
        "className": "nginx",
        "host": "overseer.example.com",
        "annotations": annotations,
        "tlsSecretName": "overseer-tls",
    }
    rendered = render({"api": {"ingress": ingress_values}})
    ingress = rendered.one("Ingress")
    (service,) = of_component(rendered.of_kind("Service"), "api")
    assert ingress["metadata"]["annotations"] == annotations
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == [
        {"hosts": ["overseer.example.com"], "secretName": "overseer-tls"}
    ]
    [rule] = ingress["spec"]["rules"]
    assert rule["host"] == "overseer.example.com"
    [path] = rule["http"]["paths"]
    assert (path["path"], path["pathType"]) == ("/", "Prefix")
    backend = path["backend"]["service"]
    assert backend == {"name": service["metadata"]["name"], "port": {"name": "http"}}
    assert service["spec"]["ports"][0]["name"] == "http"
    # A new execution's Location is the URL clients use, not the API pod's own
    env = env_of(container(rendered, "api", "api"))
    assert env["OVERSEER_API_PUBLIC_URL"] == "https://overseer.example.com"


def test_the_public_url_is_plain_http_without_tls_and_may_be_given(render: Render) -> None:
    ingress_values = {"enabled": True, "host": "overseer.example.com"}
    rendered = render({"api": {"ingress": ingress_values}})
    assert "tls" not in rendered.one("Ingress")["spec"]
    assert "ingressClassName" not in rendered.one("Ingress")["spec"]
    env = env_of(container(rendered, "api", "api"))
    assert env["OVERSEER_API_PUBLIC_URL"] == "http://overseer.example.com"
    # TLS ended in front of the controller: say so with publicUrl
    given = render({"api": {"ingress": ingress_values, "publicUrl": "https://jobs.example.com/"}})
    env = env_of(container(given, "api", "api"))
    assert env["OVERSEER_API_PUBLIC_URL"] == "https://jobs.example.com"
