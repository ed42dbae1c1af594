"""The tree keeps the shape of docs/architecture.md: imports point down, and what sits outside the
product (simulators, tests, benchmarks) stays out of it and out of the wheel.

The import rules are data, ``CONTRACTS``: (package, forbidden import prefixes). ``imports_of`` reads
the source with ``ast`` rather than importing it, so it needs no Django set-up and sees every
import: module-level and function-level, ``from . import x`` resolved to an absolute name, and
``importlib.import_module("…")`` / ``__import__("…")`` with a literal name. A small AST walk instead
of import-linter: no new dependency, no import of the product, and the rules stay a plain list the
layer rules can join.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("hospital_interop", "mutual_recognition", "emr_sharing", "esign", "dictionaries")
OUTSIDE = ("simulators", "tests", "benchmarks")  # separate processes and tools that import the product

APPS = ("dictionaries", "mutual_recognition", "emr_sharing", "esign")
CORE = (
    "hospital_interop.uploads",
    "hospital_interop.integrations",
    "hospital_interop.patients",
    "hospital_interop.dicom",
    "hospital_interop.audit",
    "hospital_interop.quality",
)

CONTRACTS: list[tuple[str, tuple[str, ...]]] = [
    # The simulators, the test suite and the benchmarks import the product; nothing in it imports them.
    *((package, OUTSIDE) for package in PRODUCT),
    # Layers (docs/architecture.md): the core never imports an app ...
    ("hospital_interop", APPS),
    # ... the platform client is plain Python over the protocol: no models, no DRF, no outbox
    ("hospital_interop/municipal", ("django.db", "django.contrib", "rest_framework", *CORE)),
    # ... and the apps depend one way: mutual_recognition (with exam and lab) on dictionaries and
    # esign; esign, emr_sharing and dictionaries on no other app.
    ("dictionaries", ("mutual_recognition", "emr_sharing", "esign")),
    ("esign", ("mutual_recognition", "emr_sharing")),
    ("emr_sharing", ("mutual_recognition", "esign")),
]

# Services, selectors and models are below the edges: they never import a view, an API, URLs or the admin.
EDGES = ("views", "api", "urls", "api_urls", "schema_urls", "admin")
INNER = ("services", "selectors", "models")


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in one source file.

    ``from a import b`` yields both ``a`` and ``a.b`` (``b`` may be a submodule)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = (
        module_name(path, root) if path.name == "__init__.py" else module_name(path, root).rpartition(".")[0]
    )
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names if alias.name != "*"]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                found.append((node.lineno, node.args[0].value))
    return found


def edge_imports(root: Path, package: str) -> list[str]:
    """ "path:line imports name" for each import of an edge module by a services/selectors/models module."""
    found = []
    for path in sorted(p for p in (root / package).rglob("*.py") if "migrations" not in p.parts):
        if path.stem not in INNER:
            continue
        for line, name in imports_of(path, root):
            parts = name.split(".")
            if parts[0] in PRODUCT and any(part in EDGES for part in parts[1:]):
                found.append(f"{path.relative_to(root)}:{line} imports {name}")
    return sorted(set(found))


@pytest.mark.parametrize("package", PRODUCT)
def test_services_selectors_and_models_never_import_an_edge(package):
    assert edge_imports(ROOT, package) == []


def test_the_layer_rules_catch_an_upward_import(tmp_path):
    """A core module importing an app, and a service importing a view, are both reported."""
    core = tmp_path / "hospital_interop" / "uploads"
    core.mkdir(parents=True)
    (tmp_path / "hospital_interop" / "__init__.py").write_text("")
    (core / "__init__.py").write_text("")
    (core / "services.py").write_text("from mutual_recognition.models import Decision\nfrom . import views\n")
    (core / "views.py").write_text("")
    assert violations(tmp_path, "hospital_interop", APPS)[1] == [
        "hospital_interop/uploads/services.py:1 imports mutual_recognition.models",
        "hospital_interop/uploads/services.py:1 imports mutual_recognition.models.Decision",
    ]
    assert edge_imports(tmp_path, "hospital_interop") == [
        "hospital_interop/uploads/services.py:2 imports hospital_interop.uploads.views"
    ]


def violations(root: Path, package: str, forbidden: tuple[str, ...]) -> tuple[int, list[str]]:
    """(files read, "path:line imports name" for each forbidden import) of one package."""
    files = sorted(p for p in (root / package).rglob("*.py") if "migrations" not in p.parts)
    found = []
    for path in files:
        for line, name in imports_of(path, root):
            if any(name == prefix or name.startswith(prefix + ".") for prefix in forbidden):
                found.append(f"{path.relative_to(root)}:{line} imports {name}")
    return len(files), sorted(set(found))


@pytest.mark.parametrize(("package", "forbidden"), CONTRACTS, ids=[c[0] for c in CONTRACTS])
def test_the_product_imports_nothing_that_sits_outside_it(package, forbidden):
    read, found = violations(ROOT, package, forbidden)
    assert read > 0, f"{package}: no source files found; is the contract's package name right?"
    assert found == [], f"{package} may not import {', '.join(forbidden)}:\n" + "\n".join(found)


def test_the_import_check_sees_every_form_of_import_and_only_forbidden_names(tmp_path):
    """The contract test is only as good as its reader: a product module that imports a simulator
    at module level, inside a function, through ``from``, relatively or by name is caught; names
    that merely start alike, or a subpackage of the product of the same name, are not."""
    package = tmp_path / "product"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from .. import simulators  # product.simulators: allowed\n")
    (package / "sub" / "views.py").write_text(
        "import os\n"
        "import simulators.platform\n"
        "from simulators.ca.__main__ import main\n"
        "from simulators import ca\n"
        "import simulators_extra\n"
        "from .simulators import x\n"
        "def start():\n"
        "    from simulators.platform import cli\n"
        "    import importlib\n"
        "    return importlib.import_module('simulators.ca'), __import__('simulators')\n"
        "TEXT = 'simulators'\n"
    )
    read, found = violations(tmp_path, "product", ("simulators",))
    assert read == 3
    assert found == [
        "product/sub/views.py:10 imports simulators",
        "product/sub/views.py:10 imports simulators.ca",
        "product/sub/views.py:2 imports simulators.platform",
        "product/sub/views.py:3 imports simulators.ca.__main__",
        "product/sub/views.py:3 imports simulators.ca.__main__.main",
        "product/sub/views.py:4 imports simulators",
        "product/sub/views.py:4 imports simulators.ca",
        "product/sub/views.py:8 imports simulators.platform",
        "product/sub/views.py:8 imports simulators.platform.cli",
    ]


def test_the_wheel_holds_the_product_and_no_simulator(tmp_path):
    """``pip wheel . --no-deps`` of a copy of the checkout (so that no build/ folder lands in it):
    every product package is inside, and nothing of simulators/, tests/ or benchmarks/ (they run
    from the checkout). The build backend is the one pyproject.toml names, fetched by pip from the
    configured index like any install."""
    source = tmp_path / "src"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "var", "build", "staticfiles", "__pycache__", "*.egg-info", ".*_cache"
        ),
    )
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(source),
            "--no-deps",
            "--quiet",
            "--wheel-dir",
            str(tmp_path / "dist"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-4000:]
    (wheel,) = (tmp_path / "dist").glob("hospital_interop-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names if ".dist-info/" not in n} == set(PRODUCT)
    assert [n for n in names if "/simulators/" in f"/{n}"] == []
