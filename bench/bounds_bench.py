"""Time the worst inputs a user can send to the portal's costly steps.

    .venv/bin/python bench/bounds_bench.py [--repeat 3]

Prints the slowest of REPEAT runs for each input: comparing two versions (the diff behind
history and review pages, with difflib.ndiff beside it where it finishes in time), rendering
Markdown, and parsing and running a search query. Inputs are as large as the forms allow.
"""

from __future__ import annotations

import argparse
import difflib
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from portal.casestudies.diff import compare  # noqa: E402


def slowest(repeat: int, run) -> float:
    worst = 0.0
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        worst = max(worst, time.perf_counter() - start)
    return worst * 1000


def paragraphs(rng: random.Random, size: int) -> str:
    words = [
        "".join(rng.choice("abcdefghijklmnop") for _ in range(rng.randint(2, 9)))
        for _ in range(3000)
    ]
    text = "\n\n".join(" ".join(rng.choice(words) for _ in range(15)) for _ in range(size // 50))
    return text[:size]


def diff_inputs(rng: random.Random) -> list[tuple[str, str, str]]:
    doc = paragraphs(rng, 100_000)
    lines = doc.split("\n")
    scattered = [line.replace("a", "A", 1) if n % 40 == 0 else line for n, line in enumerate(lines)]
    one_line = doc.replace("\n", " ")
    first, last = one_line.index(" "), one_line.rindex(" ")
    respaced_ends = f"{one_line[:first]}  {one_line[first + 1 : last]}  {one_line[last + 1 :]}"
    spaced = one_line.replace(" ", "  ")
    spaced = spaced[: spaced.rindex("  ", 0, 100_000)]
    return [
        ("100 KB, an edit every 40 lines", doc, "\n".join(scattered)),
        ("100 KB, rewritten", doc, paragraphs(rng, 100_000)),
        ("100 KB paragraph, one word changed", one_line, one_line.replace(" ", " changed ", 1)),
        ("100 KB paragraph, rewritten", one_line, paragraphs(rng, 100_000).replace("\n", " ")),
        # The same words, spaced differently: only at both ends (so no common start or end
        # saves the work), then everywhere (a piece for every word).
        ("100 KB paragraph, spacing changed at both ends", respaced_ends, one_line),
        ("100 KB paragraph, every space doubled", spaced, spaced.replace("  ", " ")),
        ("100 KB of 'a' lines against 'a b' lines", "a\n" * 50_000, "a\nb\n" * 25_000),
        ("100 KB of 'a ' against 'a b '", "a " * 50_000, "a b " * 25_000),
        (
            "100 KB, 100 distinct lines shuffled",
            "\n".join(str(n % 100) for n in range(30_000)),
            "\n".join(str(n * 7 % 100) for n in range(30_000)),
        ),
        (
            "18 KB body, an edit every 5 lines",
            doc[:18_000],
            "\n".join(
                line + "!" if n % 5 == 0 else line
                for n, line in enumerate(doc[:18_000].split("\n"))
            ),
        ),
    ]


def bench_diff(repeat: int) -> None:
    rng = random.Random(12)
    print("Comparing two versions (history and review pages): slowest of", repeat)
    print(f"{'input':45} {'portal':>10} {'ndiff':>12}")
    for name, old, new in diff_inputs(rng):
        ours = slowest(repeat, lambda o=old, n=new: compare({"body": o}, {"body": n}))
        print(f"{name:45} {ours:8.1f} ms {ndiff_time(old, new):>12}")
    for size in (2_100, 4_400, 18_000, 100_000):
        # Lines alike but none equal: the shape that made ndiff's cost grow with the cube.
        count = size // 40
        old = "\n".join(f"line {n:05d} of the allies scheme, as run" for n in range(count))
        new = "\n".join(f"line {n:05d} of the ally scheme, as run!" for n in range(count))
        name = f"{size / 1000:.1f} KB, every line changed a little"
        ours = slowest(repeat, lambda o=old, n=new: compare({"body": o}, {"body": n}))
        print(f"{name:45} {ours:8.1f} ms {ndiff_time(old, new, 250):>12}")


def markdown_inputs() -> dict[str, str]:
    n = 100_000  # the body's limit; outcomes and lessons allow 20,000
    return {
        "realistic (headings, lists, links, emphasis)": (
            "## What we did\n\nWe ran **events** with [partners](https://example.org) and "
            "*allies*.\n\n- one\n- two\n\n"
        )
        * 1200,
        "a table of 16,000 rows": "|a|b|\n|-|-|\n" + "|x|y|\n" * 16_000,
        "100,000 opening brackets": "[" * n,
        "unclosed links": "[a](" * (n // 4),
        "alternating emphasis": "*a_" * (n // 3),
        "nested block quotes": "> " * (n // 2),
        "25,000 headings": "# x\n" * (n // 4),
        "entities": "&#" * (n // 2),
        "3,000 link references": "".join(f"[l{i}]: http://x/{i}\n" for i in range(3000))
        + "[l1] " * 3000,
    }


def bench_markdown(repeat: int) -> None:
    from portal.casestudies.markdown import _render

    print()
    print("Rendering Markdown (a case-study page, the preview), 100,000 characters, uncached:")
    for name, text in markdown_inputs().items():
        text = text[:100_000]
        print(f"{name:45} {slowest(repeat, lambda t=text: _render(t, 2)):8.1f} ms")


def ndiff_time(old: str, new: str, limit_lines: int = 200) -> str:
    """Time difflib.ndiff, but only where it can finish (it grows with the cube of the lines)."""
    a, b = old.splitlines(), new.splitlines()
    if len(a) + len(b) > limit_lines:
        return "not run"
    start = time.perf_counter()
    list(difflib.ndiff(a, b))
    return f"{(time.perf_counter() - start) * 1000:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per input (the slowest is shown)"
    )
    args = parser.parse_args()
    bench_diff(args.repeat)
    bench_markdown(args.repeat)


if __name__ == "__main__":
    main()
