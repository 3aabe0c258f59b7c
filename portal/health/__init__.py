"""Health and metrics for load balancers, orchestrators and monitors: /healthz (liveness),
/readyz (readiness), /metrics (Prometheus), and /status for people."""
