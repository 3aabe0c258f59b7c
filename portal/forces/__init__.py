"""The force directory and a page per force."""
