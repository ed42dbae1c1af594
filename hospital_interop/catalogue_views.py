"""The interface browser: every municipal interface, its key, ordering, profile and fields, plus a
payload checker for joint debugging (联调)."""

import json

from django.contrib.auth.decorators import permission_required
from django.http import Http404
from django.shortcuts import render

from hospital_interop.integrations import strictjson

from .municipal.specs import load_catalogue

PERM = "hospital_interop.view_interfaces"
KIND_NAMES = {"upload": "上传", "void": "作废", "daily": "日报", "query": "查询", "security": "安全"}


def _rows(spec_fields):
    """Flatten a field tree into table rows with depth for indentation."""
    rows = []
    for path, f in spec_fields.walk():
        rows.append(
            {
                "path": path,
                "depth": path.count(".") + path.count("[]"),
                "f": f,
                "values": list(f.value_set.codes.items())[:40] if f.value_set is not None else [],
                "more_values": max(len(f.value_set.codes) - 40, 0) if f.value_set is not None else 0,
            }
        )
    return rows


@permission_required(PERM, raise_exception=True)
def catalogue(request):
    cat = load_catalogue()
    q = request.GET.get("q", "").strip().lower()
    documents = []
    for doc in cat.documents:
        interfaces = [
            s
            for s in doc.interfaces
            if not q or q in s.code.lower() or q in s.name.lower() or q in s.path.lower()
        ]
        if interfaces:
            documents.append({"doc": doc, "interfaces": interfaces})
    return render(
        request,
        "interfaces/catalogue.html",
        {"documents": documents, "q": q, "kinds": KIND_NAMES, "total": len(cat.interfaces)},
    )


@permission_required(PERM, raise_exception=True)
def interface_detail(request, code: str):
    cat = load_catalogue()
    try:
        spec = cat.interface(code)
    except KeyError as exc:
        raise Http404(f"没有接口 {code}") from exc
    errors, checked, payload_text = None, False, ""
    if request.method == "POST":
        payload_text = request.POST.get("payload", "")
        checked = True
        try:
            errors = spec.validate(strictjson.loads(payload_text, top="any"))
        except strictjson.JsonRefused as refused:
            errors = [refused.as_error()]
    example = json.dumps(spec.example(0), ensure_ascii=False, indent=2)
    return render(
        request,
        "interfaces/detail.html",
        {
            "spec": spec,
            "kind": KIND_NAMES.get(spec.kind, spec.kind),
            "request_rows": _rows(spec.request),
            "response_rows": _rows(spec.response) if spec.response is not None else [],
            "profile": spec.profile.to_dict(),
            "example": example if len(example) < 200_000 else example[:200_000] + "\n…",
            "errors": errors,
            "checked": checked,
            "payload_text": payload_text or example,
            "children": [s for s in cat.interfaces if any(p.interface == spec.code for p in s.parents)],
        },
    )
