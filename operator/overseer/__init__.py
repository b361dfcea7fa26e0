"""Overseer: a Kubernetes-native job runner.

The package holds the shared resource model (:mod:`overseer.crd`), the pure
decisions (:mod:`overseer.core`) and the operator built on them.
"""

__version__ = "0.1.0"
