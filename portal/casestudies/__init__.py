"""Case studies: writing, the lifecycle, Markdown rendering, attachments, import."""
