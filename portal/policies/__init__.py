"""The pages a UK public-sector service owes its users: accessibility, privacy, cookies."""
