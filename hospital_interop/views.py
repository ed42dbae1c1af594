from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from . import health
from .navigation import tiles_for
from .roles import role_names


@require_GET
@never_cache
def healthz(request):
    healthy, report = health.health()
    return JsonResponse(report, status=200 if healthy else 503, json_dumps_params={"ensure_ascii": False})


@login_required
def home(request):
    tiles = tiles_for(request.user)
    groups: dict[str, list] = {}
    for tile in tiles:
        groups.setdefault(tile["group"], []).append(tile)
    return render(request, "home.html", {"tile_groups": groups, "roles": role_names(request.user)})
