"""Valid records to build test data from."""


def case_study_line(**overrides) -> dict:
    """Return one valid import record; keyword arguments replace its fields."""
    record = {
        "title": "Challenging Misogyny with the fire service",
        "summary": "A joint evening for officers and firefighters on everyday sexism.",
        "body": "## What we did\n\nWe ran a joint event on **misogyny** in the workplace.",
        "force": "Northants Police",
        "themes": ["Challenging misogyny", "Partnership working"],
        "partners": ["Northamptonshire Fire and Rescue Service"],
        "event_date": "2025-03-08",
        "outcomes": "120 people attended; 40 signed up as allies.",
        "contact_name": "Inspector Sarah Khan",
        "contact_email": "sarah.khan@northants.police.uk",
    }
    record.update(overrides)
    return {k: v for k, v in record.items() if v is not None}
