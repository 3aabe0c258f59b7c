"""The library: the home page, search and browse."""
