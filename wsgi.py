"""The WSGI entry point for production servers, e.g. `gunicorn wsgi:app`."""

from portal import create_app
from portal.search import warm

app = create_app()
# Each server worker imports this after it starts (no preloading): it opens the search
# index before its first request, not during somebody's first search.
warm(app)
