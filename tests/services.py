"""Say whether PostgreSQL and Redis answer, for `make test`'s second pass (exit 0 if both do).

Usage: python -m tests.services POSTGRES_URL REDIS_URL
"""

from __future__ import annotations

import sys


def main(postgres: str, redis_url: str) -> int:
    try:
        import psycopg
        import redis

        url = postgres.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
        with psycopg.connect(url, connect_timeout=3):
            pass
        client = redis.Redis.from_url(redis_url, socket_connect_timeout=3)
        client.ping()
        client.close()
    except Exception as error:  # noqa: BLE001 - any failure means: not this time
        print(
            f"Skipping the PostgreSQL + Redis pass: {error.__class__.__name__}: {error}\n"
            f"(start them, or set TEST_POSTGRES / TEST_REDIS; CI requires this pass)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
