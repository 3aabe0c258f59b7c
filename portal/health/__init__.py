"""Liveness for load balancers and monitors: /healthz."""
