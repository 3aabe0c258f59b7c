"""The policing glossary reaches an existing install once, and leaves an admin's list alone."""

from __future__ import annotations

from sqlalchemy import select, text

from portal.extensions import db
from portal.models import Synonym

from ..backends import embedded_only
from ..conftest import make_app


@embedded_only
def test_an_upgrade_adds_the_glossary_and_keeps_what_admins_wrote(tmp_path):
    from flask_migrate import upgrade

    app = make_app(tmp_path / "instance")
    with app.app_context():
        upgrade(revision="0016")  # an install from before the glossary
        for term, expansion in [
            ("vawg", "violence against women and girls"),
            ("hfs", "heforshe"),  # an admin's own
            ("marac", "our own reading of it"),  # an admin's wording of a glossary term
        ]:
            db.session.execute(
                text(
                    "INSERT INTO synonym (term, expansion, updated_at) "
                    "VALUES (:term, :expansion, CURRENT_TIMESTAMP)"
                ),
                {"term": term, "expansion": expansion},
            )
        db.session.commit()
        upgrade()
        found = {s.term: (s.expansion, s.source) for s in db.session.scalars(select(Synonym))}
        db.session.remove()
        db.engine.dispose()
    assert found["hfs"] == ("heforshe", "")
    assert found["marac"] == ("our own reading of it", "")  # never overwritten
    assert found["vawg"] == ("violence against women and girls", "")
    assert found["idva"][0].startswith("independent domestic violence")
    assert found["idva"][1]  # says where it came from
    assert len(found) > 400
