"""Moderation: the queue of submitted case studies and the decisions on them."""
