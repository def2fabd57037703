"""The `heavy` kind of tests/projects.py: a CMS site as real ones are, slow to import.

`wagtail start` writes the project (a settings package, `home` and `search` apps, the CMS's
page serving at `/`); on top of it, what a site grows into: the CMS's contrib apps, an API
(django-rest-framework, django-filter), django-extensions, and five apps of its own (`catalog`,
`blog`, `events`, `shop`, `people`), each with models that carry code (querysets, a page model
with a StreamField, tags, snippets), admin, serializers, filters, viewsets registered in the
URLconf's router, list views, a template tag library, and module-level imports of Pillow,
requests and openpyxl as real models and admin modules have; their migrations are made here.
Importing it (`django.setup()` + the URLconf, a fresh interpreter) loads ~1,950 modules in
~1.0 s of CPU, 0.9-2 s of wall time on a shared 2-core machine, ~110 MB.

`/probe/` is the page tests edit: `catalog.views.probe` (registered in the URLconf) renders
one line from five modules, each holding a `TOKEN = "..."` line (see `PROBE_FILES`):

    view=... text=... units=... model=... tag=... legacy=... products=N

- `view`: catalog/views.py itself; `text`: catalog/text.py, which views.py imports with
  `from catalog.text import TOKEN`;
- `model`: catalog/models.py; `units`: catalog/units.py, which the model module imports with
  `from catalog.units import TOKEN` (so it is imported by `django.setup()`);
- `tag`: the template tag library catalog/templatetags/catalog_tags.py;
- `legacy`: catalog/legacy.py's token, or `absent` once that module is deleted (the model
  module imports it in `try/except ImportError`).

Production settings read `DJANGO_SECRET_KEY` and `DJANGO_ALLOWED_HOSTS` from the environment
and `wsgi.py` names them, as a deployed site has it; `manage.py` names the dev settings.
Generating takes about 2 s and needs no network once the `test` extra is installed;
`migrate()` then creates its database.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

APPS = {"catalog": "Product", "blog": "Post", "events": "Event", "shop": "Offer",
        "people": "Person"}
WELCOME_TEXT = "Welcome to your new Wagtail site!"
PROBE_PATH = "/probe/"
# The token each probe field comes from, relative to the project root.
PROBE_FILES = {
    "view": "catalog/views.py",
    "text": "catalog/text.py",
    "units": "catalog/units.py",
    "model": "catalog/models.py",
    "tag": "catalog/templatetags/catalog_tags.py",
    "legacy": "catalog/legacy.py",
}
_TOKEN = re.compile(r'^TOKEN = ".*"$', re.M)


def generate_heavy(root: Path) -> None:
    """Write the heavy project into the empty directory `root`."""
    _run([sys.executable, "-c", "from wagtail.bin.wagtail import main; main()",
          "start", "mysite", str(root)], root)
    _settings(root)
    (root / "mysite" / "static" / "css" / "mysite.css").write_text(
        "body { font-family: sans-serif; margin: 0 auto; max-width: 60rem; }\n"
    )
    for app, item in APPS.items():
        _app(root, app, item)
    _probe(root)
    _urls(root)
    _run([sys.executable, "manage.py", "makemigrations", *APPS, "-v", "0"], root)


def build_source(parent: Path) -> None:
    """`parent/heavy`: the project and its migrated database, which tests copy (~30 s: once a
    run, tests/conftest.py)."""
    root = parent / "heavy"
    root.mkdir()
    generate_heavy(root)
    migrate(root)


def migrate(root: Path) -> None:
    """Create the project's database (db.sqlite3 beside manage.py): ~20 s for the CMS's many
    migrations, so a test module or a benchmark does it once and copies the project after."""
    _run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], root)


def set_token(path: Path, value: str) -> None:
    """Rewrite the `TOKEN = "..."` line of a probe module."""
    text, n = _TOKEN.subn(f'TOKEN = "{value}"', path.read_text(), count=1)
    assert n == 1, path
    path.write_text(text)


def disk_probe(root: Path) -> dict[str, str]:
    """What `/probe/` must answer for the code now on disk."""
    out = {}
    for field, name in PROBE_FILES.items():
        path = root / name
        found = _TOKEN.search(path.read_text()) if path.exists() else None
        out[field] = found.group(0).split('"')[1] if found else "absent"
    out["products"] = "0"
    return out


def parse_probe(body: bytes) -> dict[str, str]:
    """`view=a text=b ...` -> {"view": "a", "text": "b", ...}."""
    return dict(word.split("=", 1) for word in body.decode().split())


def _run(argv: list[str], cwd: Path) -> None:
    # migrate takes ~20 s on a quiet machine, minutes on a busy one
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"{argv[1:4]} failed:\n{result.stdout}\n{result.stderr}")


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path}: {old!r} not found (the CMS's template changed?)"
    path.write_text(text.replace(old, new, 1))


def _settings(root: Path) -> None:
    settings = root / "mysite" / "settings"
    own = "".join(f'    "{app}",\n' for app in APPS)
    _replace(settings / "base.py", '    "search",\n', f'    "search",\n{own}' + textwrap.indent(
        textwrap.dedent(
            """\
            "wagtail.contrib.settings",
            "wagtail.contrib.routable_page",
            "wagtail.contrib.table_block",
            "wagtail.contrib.search_promotions",
            "wagtail.contrib.sitemaps",
            "wagtail.contrib.styleguide",
            "wagtail.locales",
            "wagtail.api.v2",
            "rest_framework",
            "rest_framework.authtoken",
            "django_extensions",
            "django.contrib.sitemaps",
            "django.contrib.humanize",
            """
        ), "    "))
    with (settings / "base.py").open("a") as fh:
        fh.write(textwrap.dedent(
            """
            REST_FRAMEWORK = {
                "DEFAULT_FILTER_BACKENDS": [
                    "django_filters.rest_framework.DjangoFilterBackend",
                    "rest_framework.filters.SearchFilter",
                    "rest_framework.filters.OrderingFilter",
                ],
                "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
                "PAGE_SIZE": 20,
            }
            """
        ))
    with (settings / "production.py").open("a") as fh:
        fh.write(
            "\nimport os  # noqa: E402\n\n"
            'SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")\n'
            'ALLOWED_HOSTS = [h for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "").split(",")'
            " if h]\n"
        )
    wsgi = root / "mysite" / "wsgi.py"
    wsgi.write_text(wsgi.read_text().replace("mysite.settings.dev", "mysite.settings.production"))


def _urls(root: Path) -> None:
    urls = root / "mysite" / "urls.py"
    imports = "".join(f"from {app} import views as {app}_views\n" for app in APPS)
    _replace(urls, "from search import views as search_views\n",
             "from search import views as search_views\n"
             "from rest_framework import routers\n"
             + imports + "\nrouter = routers.DefaultRouter()\n"
             + "".join(
                 f'router.register("{app}/items", {app}_views.{item}ViewSet)\n'
                 f'router.register("{app}/categories", {app}_views.{item}CategoryViewSet)\n'
                 for app, item in APPS.items()
             ))
    routes = "".join(
        f'    path("{app}/", {app}_views.{item}ListView.as_view(), name="{app}-list"),\n'
        f'    path("{app}/<slug:slug>/", {app}_views.{item}DetailView.as_view(),'
        f' name="{app}-detail"),\n'
        for app, item in APPS.items()
    )
    _replace(urls, '    path("django-admin/", admin.site.urls),\n',
             '    path("django-admin/", admin.site.urls),\n'
             '    path("probe/", catalog_views.probe, name="probe"),\n'
             '    path("api/", include(router.urls)),\n' + routes)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())


def _app(root: Path, app: str, item: str) -> None:
    """One app of the site's own: the same shape for each, named after its main model."""
    base = root / app
    names = {"app": app, "Item": item, "item": item.lower()}
    for name, template in _APP_FILES.items():
        _write(base / name.format(**names), template.format(**names))


def _probe(root: Path) -> None:
    base = root / "catalog"
    _write(base / "text.py", '"""Words the probe view shows."""\n\nTOKEN = "text-0"\n')
    _write(base / "units.py", '"""Units the models use."""\n\nTOKEN = "units-0"\n')
    _write(base / "legacy.py", '"""Kept for old imports."""\n\nTOKEN = "legacy-0"\n')
    _replace(base / "models.py", "\nclass ", textwrap.dedent(
        """
        from catalog.units import TOKEN as UNITS_TOKEN

        try:
            from catalog.legacy import TOKEN as LEGACY_TOKEN
        except ImportError:
            LEGACY_TOKEN = "absent"

        TOKEN = "model-0"


        class """))
    _replace(base / "models.py", "    def price_with_tax(", textwrap.indent(textwrap.dedent(
        """\
        @classmethod
        def probe(cls) -> dict[str, str]:
            return {"model": TOKEN, "units": UNITS_TOKEN, "legacy": LEGACY_TOKEN}

        def price_with_tax("""), "    "))
    with (base / "views.py").open("a") as fh:
        fh.write(textwrap.dedent(
            """

            from django.template.response import TemplateResponse  # noqa: E402

            from catalog.text import TOKEN as TEXT_TOKEN  # noqa: E402

            TOKEN = "view-0"


            def probe(request):
                context = {"view": TOKEN, "text": TEXT_TOKEN, **Product.probe(),
                           "products": Product.objects.count()}
                return TemplateResponse(request, "catalog/probe.html", context,
                                        content_type="text/plain")
            """
        ))
    with (base / "templatetags" / "catalog_tags.py").open("a") as fh:
        fh.write('\nTOKEN = "tag-0"\n\n\n@register.simple_tag\ndef probe_token():\n'
                 "    return TOKEN\n")
    _write(base / "templates" / "catalog" / "probe.html",
           "{% load catalog_tags %}view={{ view }} text={{ text }} units={{ units }} "
           "model={{ model }} tag={% probe_token %} legacy={{ legacy }} "
           "products={{ products }}\n")


_APP_FILES = {
    "__init__.py": "",
    "migrations/__init__.py": "",
    "apps.py": '''
        from django.apps import AppConfig


        class {Item}Config(AppConfig):
            default_auto_field = "django.db.models.BigAutoField"
            name = "{app}"
        ''',
    "models.py": '''
        """The {app} app's data: {item}s in categories, notes on them, and a page type."""

        from __future__ import annotations

        import datetime
        from decimal import ROUND_HALF_UP, Decimal

        import requests
        from django.db import models
        from django.db.models import Count, Q
        from django.utils import timezone
        from django.utils.text import slugify
        from modelcluster.contrib.taggit import ClusterTaggableManager
        from modelcluster.fields import ParentalKey
        from PIL import Image, ImageOps
        from taggit.models import TaggedItemBase
        from wagtail import blocks
        from wagtail.admin.panels import FieldPanel, InlinePanel
        from wagtail.contrib.table_block.blocks import TableBlock
        from wagtail.fields import RichTextField, StreamField
        from wagtail.images.blocks import ImageChooserBlock
        from wagtail.models import Orderable, Page
        from wagtail.search import index
        from wagtail.snippets.models import register_snippet


        class {Item}QuerySet(models.QuerySet):
            def published(self):
                return self.filter(published_at__lte=timezone.now(), hidden=False)

            def in_category(self, slug: str):
                return self.filter(category__slug=slug)

            def matching(self, text: str):
                return self.filter(Q(title__icontains=text) | Q(summary__icontains=text))

            def with_note_counts(self):
                return self.annotate(note_count=Count("notes"))

            def recent(self, days: int = 30):
                return self.filter(published_at__gte=timezone.now() - datetime.timedelta(days))


        @register_snippet
        class {Item}Category(models.Model):
            name = models.CharField(max_length=80)
            slug = models.SlugField(unique=True, blank=True)
            description = models.TextField(blank=True)

            class Meta:
                ordering = ["name"]
                verbose_name_plural = "{item} categories"

            def __str__(self) -> str:
                return self.name

            def save(self, *args, **kwargs):
                if not self.slug:
                    self.slug = slugify(self.name)
                super().save(*args, **kwargs)


        class {Item}(index.Indexed, models.Model):
            title = models.CharField(max_length=200)
            slug = models.SlugField(unique=True)
            summary = models.TextField(blank=True)
            category = models.ForeignKey(
                {Item}Category, null=True, blank=True, on_delete=models.SET_NULL,
                related_name="{item}s",
            )
            price = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0"))
            published_at = models.DateTimeField(default=timezone.now)
            hidden = models.BooleanField(default=False)
            created = models.DateTimeField(auto_now_add=True)
            updated = models.DateTimeField(auto_now=True)

            objects = {Item}QuerySet.as_manager()
            search_fields = [index.SearchField("title"), index.SearchField("summary")]

            class Meta:
                ordering = ["-published_at"]
                indexes = [models.Index(fields=["published_at", "hidden"])]

            def __str__(self) -> str:
                return self.title

            def get_absolute_url(self) -> str:
                return f"/{app}/{{self.slug}}/"

            @property
            def is_recent(self) -> bool:
                return self.published_at >= timezone.now() - datetime.timedelta(days=7)

            def price_with_tax(self, rate: Decimal = Decimal("0.2")) -> Decimal:
                return (self.price * (1 + rate)).quantize(Decimal("0.01"), ROUND_HALF_UP)

            def thumbnail(self, source, size: tuple[int, int] = (320, 240)) -> Image.Image:
                with Image.open(source) as image:
                    return ImageOps.fit(image.convert("RGB"), size)

            def notify(self, url: str) -> int:
                payload = {{"id": self.pk, "title": self.title, "url": self.get_absolute_url()}}
                return requests.post(url, json=payload, timeout=5).status_code


        class {Item}Note(models.Model):
            {item} = models.ForeignKey({Item}, on_delete=models.CASCADE, related_name="notes")
            body = models.TextField()
            created = models.DateTimeField(auto_now_add=True)

            class Meta:
                ordering = ["created"]

            def __str__(self) -> str:
                return self.body[:40]


        class {Item}PageTag(TaggedItemBase):
            content_object = ParentalKey(
                "{app}.{Item}Page", related_name="tagged_items", on_delete=models.CASCADE
            )


        class {Item}Page(Page):
            intro = RichTextField(blank=True)
            body = StreamField(
                [
                    ("heading", blocks.CharBlock(form_classname="title")),
                    ("paragraph", blocks.RichTextBlock()),
                    ("image", ImageChooserBlock()),
                    ("quote", blocks.BlockQuoteBlock()),
                    ("table", TableBlock()),
                    (
                        "links",
                        blocks.ListBlock(
                            blocks.StructBlock(
                                [("label", blocks.CharBlock()), ("url", blocks.URLBlock())]
                            )
                        ),
                    ),
                ],
                blank=True,
            )
            tags = ClusterTaggableManager(through={Item}PageTag, blank=True)

            search_fields = [*Page.search_fields, index.SearchField("intro")]
            content_panels = [
                *Page.content_panels,
                FieldPanel("intro"),
                FieldPanel("body"),
                FieldPanel("tags"),
                InlinePanel("related_links", label="Related links"),
            ]

            def get_context(self, request, *args, **kwargs):
                context = super().get_context(request, *args, **kwargs)
                context["recent"] = {Item}.objects.published()[:5]
                return context


        class {Item}PageLink(Orderable):
            page = ParentalKey({Item}Page, on_delete=models.CASCADE, related_name="related_links")
            label = models.CharField(max_length=100)
            url = models.URLField()

            panels = [FieldPanel("label"), FieldPanel("url")]
        ''',
    "admin.py": '''
        from django.contrib import admin
        from django.http import HttpResponse
        from openpyxl import Workbook

        from .models import {Item}, {Item}Category, {Item}Note


        class {Item}NoteInline(admin.TabularInline):
            model = {Item}Note
            extra = 0


        @admin.register({Item})
        class {Item}Admin(admin.ModelAdmin):
            list_display = ["title", "category", "price", "published_at", "hidden"]
            list_filter = ["hidden", "category"]
            search_fields = ["title", "summary"]
            prepopulated_fields = {{"slug": ["title"]}}
            date_hierarchy = "published_at"
            inlines = [{Item}NoteInline]
            actions = ["hide", "export"]

            @admin.action(description="Hide the selected {item}s")
            def hide(self, request, queryset):
                self.message_user(request, f"{{queryset.update(hidden=True)}} hidden")

            @admin.action(description="Export the selected {item}s as a spreadsheet")
            def export(self, request, queryset):
                book = Workbook()
                sheet = book.active
                sheet.append(["title", "category", "price", "published"])
                for obj in queryset.select_related("category"):
                    sheet.append([obj.title, str(obj.category or ""), float(obj.price),
                                  obj.published_at.replace(tzinfo=None)])
                response = HttpResponse(content_type="application/vnd.openxmlformats-"
                                        "officedocument.spreadsheetml.sheet")
                response["Content-Disposition"] = 'attachment; filename="{app}.xlsx"'
                book.save(response)
                return response


        @admin.register({Item}Category)
        class {Item}CategoryAdmin(admin.ModelAdmin):
            list_display = ["name", "slug"]
            prepopulated_fields = {{"slug": ["name"]}}
        ''',
    "serializers.py": '''
        from rest_framework import serializers

        from .models import {Item}, {Item}Category, {Item}Note


        class {Item}CategorySerializer(serializers.ModelSerializer):
            class Meta:
                model = {Item}Category
                fields = ["id", "name", "slug", "description"]


        class {Item}NoteSerializer(serializers.ModelSerializer):
            class Meta:
                model = {Item}Note
                fields = ["id", "body", "created"]


        class {Item}Serializer(serializers.ModelSerializer):
            category = {Item}CategorySerializer(read_only=True)
            notes = {Item}NoteSerializer(many=True, read_only=True)
            price_with_tax = serializers.SerializerMethodField()
            url = serializers.CharField(source="get_absolute_url", read_only=True)

            class Meta:
                model = {Item}
                fields = ["id", "title", "slug", "summary", "category", "price",
                          "price_with_tax", "published_at", "notes", "url"]

            def get_price_with_tax(self, obj: {Item}) -> str:
                return str(obj.price_with_tax())

            def validate_title(self, value: str) -> str:
                if value.strip() != value:
                    raise serializers.ValidationError("no leading or trailing spaces")
                return value
        ''',
    "filters.py": '''
        import django_filters

        from .models import {Item}


        class {Item}Filter(django_filters.FilterSet):
            min_price = django_filters.NumberFilter(field_name="price", lookup_expr="gte")
            max_price = django_filters.NumberFilter(field_name="price", lookup_expr="lte")
            category = django_filters.CharFilter(field_name="category__slug")
            since = django_filters.IsoDateTimeFilter(field_name="published_at", lookup_expr="gte")

            class Meta:
                model = {Item}
                fields = ["hidden"]
        ''',
    "views.py": '''
        from django.views.generic import DetailView, ListView
        from rest_framework import permissions, viewsets

        from .filters import {Item}Filter
        from .models import {Item}, {Item}Category
        from .serializers import {Item}CategorySerializer, {Item}Serializer


        class {Item}ViewSet(viewsets.ModelViewSet):
            queryset = {Item}.objects.select_related("category").prefetch_related("notes")
            serializer_class = {Item}Serializer
            filterset_class = {Item}Filter
            search_fields = ["title", "summary"]
            ordering_fields = ["published_at", "price"]
            permission_classes = [permissions.IsAuthenticatedOrReadOnly]

            def get_queryset(self):
                queryset = super().get_queryset()
                if not self.request.user.is_staff:
                    queryset = queryset.published()
                return queryset


        class {Item}CategoryViewSet(viewsets.ReadOnlyModelViewSet):
            queryset = {Item}Category.objects.all()
            serializer_class = {Item}CategorySerializer


        class {Item}ListView(ListView):
            model = {Item}
            paginate_by = 20
            template_name = "{app}/{item}_list.html"

            def get_queryset(self):
                queryset = {Item}.objects.published().select_related("category")
                if text := self.request.GET.get("q"):
                    queryset = queryset.matching(text)
                return queryset


        class {Item}DetailView(DetailView):
            model = {Item}
            template_name = "{app}/{item}_detail.html"

            def get_queryset(self):
                return {Item}.objects.published().with_note_counts()
        ''',
    "templatetags/__init__.py": "",
    "templatetags/{app}_tags.py": '''
        from django import template
        from django.utils.html import format_html

        from {app}.models import {Item}

        register = template.Library()


        @register.simple_tag
        def {item}_count() -> int:
            return {Item}.objects.published().count()


        @register.filter
        def with_tax(value, rate="0.2"):
            from decimal import Decimal

            return (Decimal(value) * (1 + Decimal(rate))).quantize(Decimal("0.01"))


        @register.simple_tag
        def {item}_link({item}: {Item}) -> str:
            return format_html('<a href="{{}}">{{}}</a>', {item}.get_absolute_url(), {item}.title)


        @register.inclusion_tag("{app}/recent.html")
        def recent_{item}s(count: int = 5) -> dict[str, object]:
            return {{"items": {Item}.objects.published()[:count]}}
        ''',
    "wagtail_hooks.py": '''
        from wagtail import hooks


        @hooks.register("construct_explorer_page_queryset")
        def hide_{app}_drafts(parent_page, pages, request):
            return pages
        ''',
    "templates/{app}/{item}_list.html": """
        {{% extends "base.html" %}}{{% load {app}_tags %}}
        {{% block content %}}<h1>{Item}s ({{% {item}_count %}})</h1><ul>
        {{% for obj in object_list %}}<li>{{% {item}_link obj %}}</li>{{% endfor %}}</ul>
        {{% endblock %}}
        """,
    "templates/{app}/{item}_detail.html": """
        {{% extends "base.html" %}}{{% load {app}_tags %}}
        {{% block content %}}<h1>{{{{ object.title }}}}</h1><p>{{{{ object.price|with_tax }}}}</p>
        {{% recent_{item}s 3 %}}{{% endblock %}}
        """,
    "templates/{app}/recent.html": """
        <ul>{{% for obj in items %}}<li>{{{{ obj.title }}}}</li>{{% endfor %}}</ul>
        """,
}
