"""``overseer``: a command-line client of Overseer's REST API.

A thin client over HTTP only (never Kubernetes), so it works wherever the API is
reachable: a port-forward, an Ingress. It imports nothing of the operator or the API,
so it can ship alone. ``docs/cli.rst`` describes it.
"""
