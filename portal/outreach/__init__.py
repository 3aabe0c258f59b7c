"""Reaching out from a case study: contact its author, record that a force adopted it."""
