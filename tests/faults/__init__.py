"""Fault tests: hosts in network namespaces (bed.py), a workload and checker (checker.py)."""
