"""The ground floor every area stands on: errors, links, text rules, the case-study rules
and what "live" means. It imports nothing of the portal but its models and extensions."""
