"""Following forces and themes: the follow buttons, weekly digests and Atom feeds."""
