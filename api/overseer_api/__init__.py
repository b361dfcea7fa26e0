"""Overseer's REST API (FastAPI): /jobs, executions and their output, served from watch caches.

It never imports the operator (an import-linter contract keeps them independent);
both share only the resource model in ``overseer.crd`` and the pure ``overseer.core``.
"""
