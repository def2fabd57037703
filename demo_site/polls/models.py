"""Question/Choice models, as in the Django tutorial."""

from __future__ import annotations

import datetime

from django.db import models
from django.utils import timezone


class Question(models.Model):
    """A poll question with a publication date."""

    question_text = models.CharField(max_length=200)
    pub_date = models.DateTimeField("date published")

    def __str__(self) -> str:
        return self.question_text

    def was_published_recently(self) -> bool:
        """True if published within the last day (and not in the future)."""
        now = timezone.now()
        return now - datetime.timedelta(days=1) <= self.pub_date <= now


class Choice(models.Model):
    """One answer to a Question with its running vote count."""

    question = models.ForeignKey(Question, on_delete=models.CASCADE)
    choice_text = models.CharField(max_length=200)
    votes = models.IntegerField(default=0)

    def __str__(self) -> str:
        return self.choice_text
