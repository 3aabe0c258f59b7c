"""The form beside a search that found nothing: add a synonym in one step."""

from wtforms import HiddenField

from ..admin.forms import SynonymForm


class SearchSynonymForm(SynonymForm):
    """The admin page's synonym form, and the search it was sent from (to show it again)."""

    search = HiddenField()
