"""Atom feeds of new case studies, and the private links that open them to feed readers."""
