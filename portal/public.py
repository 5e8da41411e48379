"""Public pages: privacy policy, troubleshooting, technical overview, the user agreement.

Reachable without login (and during maintenance and before the agreement is accepted:
portal.middleware.PUBLIC_PREFIXES). Each is one template under ``templates/portal/public/``;
a facility replaces the words by putting its own template of the same name in the
``DDS_TEMPLATES_DIR`` directory (searched first; docs/portal.md).
"""

from __future__ import annotations

from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.services.agreement import agreement_version


def _public(request, template: str, title: str):
    return render(request, f"portal/public/{template}.html",
                  {"title": title, "agreement_version": agreement_version()})


@require_GET
def privacy(request):
    return _public(request, "privacy", "Privacy policy")


@require_GET
def troubleshooting(request):
    return _public(request, "troubleshooting", "Troubleshooting")


@require_GET
def technical(request):
    return _public(request, "technical", "How your data is protected")


@require_GET
def terms(request):
    return _public(request, "terms", "User agreement")
