"""charts/overseer, the output archive: the bundled S3 store, or a store of one's own."""

from __future__ import annotations

import base64
from typing import Any

from tests.chart.conftest import Render, Rendered
from tests.chart.test_chart import container, deployment, of_component, pod_spec

EXTERNAL = {
    "archive": {
        "s3": {
            "endpoint": "https://s3.eu-west-1.amazonaws.com",
            "bucket": "acme-overseer",
            "prefix": "prod/",
            "region": "eu-west-1",
            "pathStyle": False,
            "credentials": {"existingSecret": "archive-keys"},
        }
    }
}
ROLE = {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/overseer"}
STORE_ENDPOINT = "http://$(OVERSEER_STORE_SERVICE_HOST):$(OVERSEER_STORE_SERVICE_PORT)"


def env_of(found: dict[str, Any]) -> dict[str, Any]:
    """name -> value, or the valueFrom of a variable taken from elsewhere."""
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in found["env"]}


def archive_env(rendered: Rendered) -> list[dict[str, Any]]:
    """The archive settings of the operator (OVERSEER_ARCHIVE_*) and of the API
    (OVERSEER_API_ARCHIVE_*), named without their prefix: ARCHIVE_S3_BUCKET..."""
    found = []
    for component, prefix in (("operator", "OVERSEER_"), ("api", "OVERSEER_API_")):
        env = env_of(container(rendered, component, component))
        found.append(
            {k.removeprefix(prefix): v for k, v in env.items() if k.startswith(f"{prefix}ARCHIVE_")}
        )
    return found


def key_ref(name: str, key: str) -> dict[str, Any]:
    return {"secretKeyRef": {"name": name, "key": key}}


def test_by_default_the_chart_runs_a_store_on_a_claim(render: Render) -> None:
    rendered = render()
    store = deployment(rendered, "store")
    assert store["kind"] == "StatefulSet" and store["spec"]["replicas"] == 1
    # its data on a claim of the cluster's default StorageClass, never an emptyDir
    (claim,) = store["spec"]["volumeClaimTemplates"]
    assert claim["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "10Gi"}},
    }
    assert all(
        "emptyDir" not in v for v in pod_spec(rendered, "store")["volumes"] if v["name"] == "data"
    )
    server = container(rendered, "store", "store")
    assert server["image"] == "localhost/overseer/store:v1.8.0"
    assert server["args"] == ["--port", ":7070", "posix", "/data/buckets"]
    assert {m["mountPath"]: m["name"] for m in server["volumeMounts"]}["/data"] == "data"
    # the bucket exists before anyone writes
    (init,) = pod_spec(rendered, "store")["initContainers"]
    assert init["command"] == ["mkdir", "-p", "/data/buckets/overseer"]
    # probed on its health route
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert server[probe]["httpGet"] == {"path": "/health", "port": "s3"}
    assert env_of(server)["VGW_HEALTH"] == "/health"
    # no Kubernetes credentials in a pod that never talks to the API server
    assert pod_spec(rendered, "store")["automountServiceAccountToken"] is False
    # the Service in front of it, governing the StatefulSet
    (service,) = of_component(rendered.of_kind("Service"), "store")
    assert service["metadata"]["name"] == store["spec"]["serviceName"] == "overseer-store"
    assert service["spec"]["selector"] == store["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"] == [
        {"name": "s3", "port": 7070, "targetPort": "s3", "protocol": "TCP"}
    ]


def test_the_claim_template_carries_no_label_an_upgrade_would_change(render: Render) -> None:
    # volumeClaimTemplates are immutable: a chart version in them would fail every upgrade
    (claim,) = deployment(render(), "store")["spec"]["volumeClaimTemplates"]
    assert set(claim["metadata"]["labels"]) == {
        "app.kubernetes.io/name",
        "app.kubernetes.io/instance",
        "app.kubernetes.io/component",
    }


def test_operator_and_api_reach_the_store_through_its_service(render: Render) -> None:
    rendered = render()
    operator, api = archive_env(rendered)
    assert operator == api
    # the variables Kubernetes sets for the Service: no cluster DNS needed
    assert operator["ARCHIVE_S3_ENDPOINT"] == STORE_ENDPOINT
    assert operator["ARCHIVE_S3_PATH_STYLE"] == "true"
    assert (operator["ARCHIVE_BACKEND"], operator["ARCHIVE_S3_BUCKET"]) == (
        "s3",
        "overseer",
    )
    assert (operator["ARCHIVE_S3_REGION"], operator["ARCHIVE_S3_PREFIX"]) == (
        "us-east-1",
        "",
    )
    # no archive on a local volume any more
    for component in ("operator", "api"):
        volumes = {v["name"] for v in pod_spec(rendered, component)["volumes"]}
        assert "archive" not in volumes
        env = env_of(container(rendered, component, component))
        assert not {"OVERSEER_ARCHIVE_DIR", "OVERSEER_API_ARCHIVE_DIR"} & set(env)
    # the store signs with the region the clients sign for
    assert env_of(container(rendered, "store", "store"))["VGW_REGION"] == "us-east-1"


def test_a_generated_access_key_is_the_stores_and_its_clients(render: Render) -> None:
    rendered = render()
    (secret,) = of_component(rendered.of_kind("Secret"), "store")
    assert secret["metadata"]["name"] == "overseer-store"
    key_id = base64.b64decode(secret["data"]["access-key-id"]).decode()
    secret_key = base64.b64decode(secret["data"]["secret-access-key"]).decode()
    assert len(key_id) == 20 and key_id.isalnum()
    assert len(secret_key) == 40
    store = env_of(container(rendered, "store", "store"))
    assert store["ROOT_ACCESS_KEY_ID"] == key_ref("overseer-store", "access-key-id")
    assert store["ROOT_SECRET_ACCESS_KEY"] == key_ref("overseer-store", "secret-access-key")
    for env in archive_env(rendered):
        assert env["ARCHIVE_S3_ACCESS_KEY_ID"] == store["ROOT_ACCESS_KEY_ID"]
        assert env["ARCHIVE_S3_SECRET_ACCESS_KEY"] == store["ROOT_SECRET_ACCESS_KEY"]
    # a new render (a new install) draws a new key; an upgrade keeps it (tests/e2e)
    (again,) = of_component(render().of_kind("Secret"), "store")
    assert again["data"]["secret-access-key"] != secret["data"]["secret-access-key"]


def test_a_store_of_ones_own_replaces_the_bundled_one(render: Render) -> None:
    rendered = render(EXTERNAL)
    assert of_component(rendered.objects, "store") == []
    operator, api = archive_env(rendered)
    assert operator == api
    assert operator == {
        "ARCHIVE_BACKEND": "s3",
        "ARCHIVE_S3_ENDPOINT": "https://s3.eu-west-1.amazonaws.com",
        "ARCHIVE_S3_BUCKET": "acme-overseer",
        "ARCHIVE_S3_PREFIX": "prod/",
        "ARCHIVE_S3_REGION": "eu-west-1",
        "ARCHIVE_S3_PATH_STYLE": "false",
        "ARCHIVE_S3_ACCESS_KEY_ID": key_ref("archive-keys", "access-key-id"),
        "ARCHIVE_S3_SECRET_ACCESS_KEY": key_ref("archive-keys", "secret-access-key"),
    }


def test_without_a_secret_a_store_of_ones_own_uses_the_default_chain(render: Render) -> None:
    rendered = render(
        {
            "archive": {"s3": {"endpoint": "https://s3.eu-west-1.amazonaws.com"}},
            "serviceAccount": {"annotations": ROLE},
            "api": {"serviceAccount": {"annotations": ROLE}},
        }
    )
    assert rendered.of_kind("StatefulSet") == []
    for env in archive_env(rendered):
        assert "ARCHIVE_S3_ACCESS_KEY_ID" not in env
        assert "ARCHIVE_S3_SECRET_ACCESS_KEY" not in env
    # the cloud role reaches both ServiceAccounts that read or write the archive
    for account in rendered.of_kind("ServiceAccount"):
        assert account["metadata"]["annotations"] == ROLE, account["metadata"]["name"]
    # nothing generated that nobody reads
    assert of_component(rendered.of_kind("Secret"), "store") == []


def test_a_secret_of_ones_own_also_keys_the_bundled_store(render: Render) -> None:
    rendered = render(
        {
            "archive": {
                "s3": {
                    "credentials": {
                        "existingSecret": "our-keys",
                        "accessKeyIdKey": "AWS_ACCESS_KEY_ID",
                        "secretAccessKeyKey": "AWS_SECRET_ACCESS_KEY",
                    }
                }
            }
        }
    )
    assert of_component(rendered.of_kind("Secret"), "store") == []
    store = env_of(container(rendered, "store", "store"))
    assert store["ROOT_ACCESS_KEY_ID"] == key_ref("our-keys", "AWS_ACCESS_KEY_ID")
    for env in archive_env(rendered):
        assert env["ARCHIVE_S3_SECRET_ACCESS_KEY"] == key_ref("our-keys", "AWS_SECRET_ACCESS_KEY")


def test_store_values_reach_its_pod_and_claim(render: Render) -> None:
    rendered = render(
        {
            "store": {
                "persistence": {"size": "50Gi", "storageClassName": "fast"},
                "service": {"port": 9000},
                "logRequests": True,
                "nodeSelector": {"disk": "ssd"},
                "podAnnotations": {"backup": "daily"},
            },
            "archive": {"s3": {"bucket": "outputs", "region": "eu-central-1"}},
        }
    )
    store = deployment(rendered, "store")
    (claim,) = store["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["storageClassName"] == "fast"
    assert claim["spec"]["resources"]["requests"]["storage"] == "50Gi"
    spec = store["spec"]["template"]["spec"]
    assert spec["nodeSelector"] == {"disk": "ssd"}
    assert store["spec"]["template"]["metadata"]["annotations"] == {"backup": "daily"}
    assert spec["initContainers"][0]["command"] == ["mkdir", "-p", "/data/buckets/outputs"]
    server = env_of(container(rendered, "store", "store"))
    assert (server["VGW_QUIET"], server["VGW_REGION"]) == ("false", "eu-central-1")
    (service,) = of_component(rendered.of_kind("Service"), "store")
    assert service["spec"]["ports"][0]["port"] == 9000
    for env in archive_env(rendered):
        assert env["ARCHIVE_S3_BUCKET"] == "outputs"
