"""Figures from the library: the dashboard, exports and the annual report."""
