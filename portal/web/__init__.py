"""Cross-cutting request helpers: htmx, security headers, error pages, health."""
