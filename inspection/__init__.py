"""Reads pipeline runs back out of ML Metadata: runs, artifacts, lineage, evaluations,
an HTML report (`python -m inspection`), and the local runner's progress lines."""
