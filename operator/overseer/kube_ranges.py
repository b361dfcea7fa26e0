"""The cluster's Service ranges, read once at start-up for the webhook URL policy.

Beside :mod:`overseer.kube`: its own short-lived lightkube client, and two reads that may
be refused (the chart grants them only when no Service CIDR is configured).
"""

from __future__ import annotations

import logging

import lightkube
from lightkube import generic_resource
from lightkube.config.kubeconfig import KubeConfig
from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Service

from overseer import kube_resources

log = logging.getLogger(__name__)

ServiceCIDR = generic_resource.create_global_resource(
    "networking.k8s.io", "v1", "ServiceCIDR", "servicecidrs"
)


async def read_service_cidrs(kubeconfig: str | None) -> tuple[list[str], list[str]]:
    """The cluster's Service CIDRs (the ServiceCIDR API), and the ClusterIPs of the
    ``default/kubernetes`` Service; either is empty when it cannot be read."""
    config = KubeConfig.from_file(kubeconfig).get() if kubeconfig else None
    client = lightkube.AsyncClient(config=config)
    cidrs: list[str] = []
    ips: list[str] = []
    try:
        try:
            async for item in client.list(ServiceCIDR):
                cidrs += (item.get("spec") or {}).get("cidrs") or []
        except (ApiError, kube_resources.HTTPError) as error:
            log.info("the ServiceCIDR API cannot be read: %s", error)
        try:
            service = await client.get(Service, "kubernetes", namespace="default")
            ips = list((service.spec and service.spec.clusterIPs) or [])
        except (ApiError, kube_resources.HTTPError) as error:
            log.info("Service default/kubernetes cannot be read: %s", error)
    finally:
        await client.close()
    return cidrs, ips
