"""One process's share of a parallel build of the Whoosh index (whoosh_backend.py).

Run as `python -m portal.search.build_part IN OUT` by the building process, with two pipes'
file descriptors: from IN it reads the new index's folder and the part to build (pickled),
to OUT it writes its progress and, last, its segments or why it failed.
"""

from __future__ import annotations

import sys
from multiprocessing.connection import Connection

from .whoosh_backend import _build_part


def main(arguments: list[str]) -> int:
    with Connection(int(arguments[0]), writable=False) as receiving:
        folder, part = receiving.recv()
    with Connection(int(arguments[1]), readable=False) as sending:
        return 0 if _build_part(folder, part, sending) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
