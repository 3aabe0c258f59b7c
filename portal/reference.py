"""Seed and look up the reference data: UK police forces (with aliases) and themes."""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from collections import Counter
from importlib import resources

from flask import current_app
from sqlalchemy import func, select

from .extensions import db
from .models import Force, ForceAlias, Theme

THEMES = (
    "Challenging misogyny",
    "Violence against women and girls",
    "Allyship and bystander action",
    "Men's health and wellbeing",
    "Women in sport",
    "Recruitment and retention",
    "Career development and mentoring",
    "Flexible working and family",
    "Community safety",
    "Night-time economy",
    "Education and young people",
    "Domestic abuse",
    "Workplace culture",
    "Partnership working",
    "Menopause support",
)


def glossary() -> dict[str, tuple[str, str]]:
    """The policing glossary (portal/data/glossary.csv, with the few short forms the search
    has always known): each term's meanings, apart with "|", and where they came from."""
    from .search.analysis import SYNONYMS
    from .search.words import MEANINGS

    raw = resources.files("portal").joinpath("data/glossary.csv").read_text("utf-8")
    meanings: dict[str, list[str]] = {}
    sources: dict[str, list[str]] = {}
    for row in csv.DictReader(io.StringIO(raw)):
        term = row["term"].strip().lower()
        meanings.setdefault(term, []).append(" ".join(row["expansion"].split()))
        sources.setdefault(term, []).append(row["source"].strip())
    for term, expansion in SYNONYMS.items():
        if term not in meanings:
            meanings[term], sources[term] = [expansion], ["HeForShe Practice Library"]
    return {
        term: (
            f" {MEANINGS} ".join(dict.fromkeys(found)),
            "; ".join(dict.fromkeys(s for s in sources[term] if s))[:160],
        )
        for term, found in meanings.items()
    }


def slugify(text: str, max_length: int = 80) -> str:
    """Return a lower-case, hyphenated ASCII slug of `text`."""
    text = text.lower().replace("&", " and ").replace("'", "")
    slug = re.sub(r"[^a-z0-9]+", "-", text).strip("-")
    return slug[:max_length].rstrip("-") or "case-study"


def key(text: str) -> str:
    """Return the form of a name used to match it in any case and spacing."""
    return " ".join(text.split()).casefold()


def load_forces() -> list[dict]:
    """Return the packaged list of forces."""
    raw = resources.files("portal").joinpath("data/forces.json").read_text("utf-8")
    return json.loads(raw)


def seed_reference_data() -> dict[str, int]:
    """Add missing forces, aliases and themes; return how many of each were added."""
    added = {"forces": 0, "aliases": 0, "themes": 0, "synonyms": 0}
    forces = {f.slug: f for f in db.session.scalars(select(Force))}
    alias_keys = set(db.session.scalars(select(ForceAlias.alias_key)))
    for entry in load_forces():
        force = forces.get(entry["slug"])
        if force is None:
            force = Force(
                name=entry["name"],
                slug=entry["slug"],
                nation=entry["nation"],
                region=entry["region"],
            )
            db.session.add(force)
            added["forces"] += 1
        for alias in entry["aliases"]:
            if key(alias) not in alias_keys:
                force.aliases.append(ForceAlias(alias=alias, alias_key=key(alias)))
                alias_keys.add(key(alias))
                added["aliases"] += 1
    from .models import Synonym

    if db.session.scalar(select(func.count()).select_from(Synonym)) == 0:
        # Only into an empty list: what admins later delete stays deleted. (Migration 0017
        # seeds the glossary into a list that was there before it.)
        found = glossary()
        db.session.add_all(
            Synonym(term=t, expansion=e, source=source) for t, (e, source) in found.items()
        )
        added["synonyms"] = len(found)
    themes = set(db.session.scalars(select(Theme.slug)))
    for position, name in enumerate(THEMES):
        if slugify(name) not in themes:
            db.session.add(Theme(name=name, slug=slugify(name), position=position))
            added["themes"] += 1
    db.session.commit()
    return added


def force_lookup() -> dict[str, int]:
    """Map every force name, slug and alias (matching keys) to the force's id."""
    lookup: dict[str, int] = {}
    for force in db.session.scalars(select(Force)):
        lookup[key(force.name)] = force.id
        lookup[key(force.slug)] = force.id
    for alias in db.session.scalars(select(ForceAlias)):
        lookup[alias.alias_key] = alias.force_id
    return lookup


def force_names_and_aliases() -> list[str]:
    """Return every force name and alias, sorted, for type-ahead suggestions."""
    names = set(db.session.scalars(select(Force.name)))
    names.update(db.session.scalars(select(ForceAlias.alias)))
    return sorted(names, key=str.casefold)


def find_force(name: str) -> Force | None:
    """Return the force called `name` (name, slug or alias, any case), if there is one."""
    if "\x00" in name:  # no force has one, and PostgreSQL refuses it in a query
        return None
    wanted = key(name)
    force = db.session.scalar(
        select(Force).where((func.lower(Force.name) == wanted) | (Force.slug == wanted))
    )
    if force is None:
        alias = db.session.scalar(select(ForceAlias).where(ForceAlias.alias_key == wanted))
        force = alias.force if alias else None
    return force


def theme_lookup() -> dict[str, int]:
    """Map every theme name and slug (matching keys) to the theme's id."""
    lookup: dict[str, int] = {}
    for theme in db.session.scalars(select(Theme)):
        lookup[key(theme.name)] = theme.id
        lookup[key(theme.slug)] = theme.id
    return lookup


def ensure_partners(names: list[str]) -> dict[str, int]:
    """Return {key: id} for these partner names, creating the missing ones.

    A new partner is spelled as most of `names` spell it (an import passes every line's
    names, repeats included; the first seen wins a tie). INSERT ... ON CONFLICT DO NOTHING:
    two writers naming the same new partner at once both succeed, and both get the one row.
    """
    from .models import Partner

    spellings: dict[str, Counter[str]] = {}
    for name in names:
        if name.strip():
            spellings.setdefault(key(name), Counter())[" ".join(name.split())] += 1
    wanted = {k: counted.most_common(1)[0][0] for k, counted in spellings.items()}
    if not wanted:
        return {}
    dialect = db.session.get_bind().dialect.name
    from sqlalchemy.dialects import postgresql, sqlite

    upsert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    db.session.execute(
        upsert(Partner).on_conflict_do_nothing(index_elements=["name_key"]),
        [{"name": name, "name_key": k} for k, name in wanted.items()],
    )
    rows = db.session.execute(
        select(Partner.name_key, Partner.id).where(Partner.name_key.in_(list(wanted)))
    )
    return dict(rows.all())


def partner_suggestions(limit: int = 500) -> list[str]:
    """The partners to suggest (`_partner_suggestions`), worked out again only when the
    published revisions change: each published revision's partners never change, so their
    count and newest id say whether the list can have changed (one small query, not a
    grouped count over every published revision's partners on each form shown)."""
    from .models import Revision, RevisionState

    version = db.session.execute(
        select(func.count(Revision.id), func.max(Revision.id)).where(
            Revision.state == RevisionState.PUBLISHED
        )
    ).one()
    key = (limit, *version)
    kept: dict[tuple[int, ...], list[str]] = current_app.extensions.setdefault(
        "portal_partner_suggestions", {}
    )
    if key not in kept:
        found = _partner_suggestions(limit)
        kept.clear()
        kept[key] = found
    return list(kept[key])


def _partner_suggestions(limit: int) -> list[str]:
    """Suggest each partner named by published case studies once, in its most common spelling.

    Only published case studies count (drafts stay private). Names that differ only in case,
    spacing, Unicode form or the shape of an apostrophe (Women’s Aid, Women's Aid) are one
    partner here: offered once, spelled as most published case studies spell it. The most
    used come first up to `limit`; the list is sorted as people read it.
    """
    from .models import Partner, Revision, RevisionState, revision_partner

    uses = func.count(func.distinct(revision_partner.c.revision_id))
    rows = db.session.execute(
        select(Partner.name, uses)
        .join(revision_partner, revision_partner.c.partner_id == Partner.id)
        .join(Revision, Revision.id == revision_partner.c.revision_id)
        .where(Revision.state == RevisionState.PUBLISHED)
        .group_by(Partner.id, Partner.name)
        .order_by(uses.desc(), Partner.name)
        .limit(limit * 2)
    ).all()
    spellings: dict[str, dict[str, int]] = {}
    for name, count in rows:
        counted = spellings.setdefault(same_name_key(name), {})
        counted[name] = counted.get(name, 0) + count
    best = [
        (sum(counted.values()), min(counted, key=lambda n: (-counted[n], n)))
        for counted in spellings.values()
    ]
    best.sort(key=lambda pair: -pair[0])
    return sorted((name for _, name in best[:limit]), key=lambda n: (n.casefold(), n))


APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})


def same_name_key(name: str) -> str:
    """Return what two spellings of one name share: case, spacing, Unicode form, apostrophes."""
    return key(unicodedata.normalize("NFKC", name).translate(APOSTROPHES))
