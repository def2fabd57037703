"""Poll views: list, detail form, vote (POST) and results."""

from __future__ import annotations

from django.db.models import F
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from .models import Choice, Question


def index(request: HttpRequest) -> HttpResponse:
    """Show the latest questions."""
    latest = Question.objects.order_by("-pub_date")[:5]
    return render(request, "polls/index.html", {"latest_question_list": latest})


def detail(request: HttpRequest, question_id: int) -> HttpResponse:
    """Show the voting form for one question."""
    question = get_object_or_404(Question, pk=question_id)
    return render(request, "polls/detail.html", {"question": question})


def results(request: HttpRequest, question_id: int) -> HttpResponse:
    """Show vote counts for one question."""
    question = get_object_or_404(Question, pk=question_id)
    return render(request, "polls/results.html", {"question": question})


@require_POST
def vote(request: HttpRequest, question_id: int) -> HttpResponse:
    """Record a vote atomically in SQL (F()) so concurrent workers don't lose votes."""
    question = get_object_or_404(Question, pk=question_id)
    try:
        choice_id = int(request.POST["choice"])
    except (KeyError, ValueError):
        return _redisplay(request, question, "You didn't select a choice.")
    updated = Choice.objects.filter(pk=choice_id, question=question).update(votes=F("votes") + 1)
    if not updated:
        return _redisplay(request, question, "That choice does not exist.")
    # Redirect after POST so reloading the results page doesn't vote twice.
    return HttpResponseRedirect(reverse("polls:results", args=(question.id,)))


def _redisplay(request: HttpRequest, question: Question, message: str) -> HttpResponse:
    """Re-render the form with an error (400 so clients notice)."""
    return render(
        request,
        "polls/detail.html",
        {"question": question, "error_message": message},
        status=400,
    )
