"""The custom resources: pydantic models, conditions, and the CRD YAML generated from them.

Pure: no I/O library is imported here. ``python -m overseer.crd.render`` writes the
CRD files for the chart and the manifests.
"""
