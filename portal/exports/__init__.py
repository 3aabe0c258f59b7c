"""Downloads of the library's results: CSV for spreadsheets, JSON Lines that re-import."""
