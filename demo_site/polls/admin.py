"""Admin registration so /admin/ has something real to show."""

from __future__ import annotations

from django.contrib import admin

from .models import Choice, Question


class ChoiceInline(admin.TabularInline):
    """Edit choices inline on the question page."""

    model = Choice
    extra = 1


@admin.register(Question)
class QuestionAdmin(admin.ModelAdmin):
    """Question admin with inline choices."""

    list_display = ["question_text", "pub_date"]
    search_fields = ["question_text"]
    inlines = [ChoiceInline]


admin.site.register(Choice)
