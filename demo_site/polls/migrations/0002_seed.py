"""Seed one poll so a fresh `migrate` always has question 1 with choices.

Launcher tests vote on /polls/1/ right after migrating, so the data must come
from a migration rather than a manual step.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations
from django.utils import timezone

SEED_QUESTION_ID = 1
SEED_QUESTION = "What's your favourite server?"
SEED_CHOICES = ("gunicorn", "uvicorn", "both")


def seed(apps: Any, schema_editor: Any) -> None:
    """Create (or repair) question 1 and its three choices idempotently."""
    question_model = apps.get_model("polls", "Question")
    choice_model = apps.get_model("polls", "Choice")
    db = schema_editor.connection.alias
    question, _ = question_model.objects.using(db).get_or_create(
        pk=SEED_QUESTION_ID,
        defaults={"question_text": SEED_QUESTION, "pub_date": timezone.now()},
    )
    for text in SEED_CHOICES:
        choice_model.objects.using(db).get_or_create(question=question, choice_text=text)


def unseed(apps: Any, schema_editor: Any) -> None:
    """Remove the seeded question (choices cascade)."""
    question_model = apps.get_model("polls", "Question")
    db = schema_editor.connection.alias
    question_model.objects.using(db).filter(
        pk=SEED_QUESTION_ID, question_text=SEED_QUESTION
    ).delete()


class Migration(migrations.Migration):
    """Data-only migration; no schema changes."""

    dependencies = [("polls", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
