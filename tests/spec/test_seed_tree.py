"""Importing spec/openapi.yaml into Apidog rebuilds the seed's Store API navigation: its folders
in the seed's order, each folder's seed operations first and in the seed's order (this server's
extra operations follow them in the same folder), the two webhook events under Webhooks, and the
seed's schemas first among the components. Importing spec/admin.yaml rebuilds the Admin API
module the same way. The seed's list is read from the shared reference."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from app import ADMIN_SPEC_PATH, load_spec

ROOT = Path(__file__).resolve().parents[2]
# The seed page lives beside the project in the shared reference; a clone elsewhere (CI) reads the
# navigation part of it committed under spec/reference/, which the last test keeps identical.
SHARED = ROOT.parent / "shared" / "reference" / "seed-apidog-docs-page.txt"
COPY = ROOT / "spec" / "reference" / "seed-navigation.txt"
SEED = SHARED if SHARED.exists() else COPY
SPEC = load_spec()
ADMIN_SPEC = load_spec(ADMIN_SPEC_PATH)
VERBS = ("get", "put", "post", "delete", "patch")
# Seed folders that hold documentation pages (Markdown in Apidog), not operations: an OpenAPI
# import cannot create them, and the README links each protocol's contract instead.
DOC_FOLDERS = {"Websocket, Socket.IO & more"}


def _seed_tree(module: str) -> dict[str, list[str]]:
    """The seed's navigation for one module: folder -> item names, both in the seed's order."""
    tree: dict[str, list[str]] = {}
    inside, folder = False, None
    for line in SEED.read_text(encoding="utf-8").splitlines():
        top = re.match(r"^  • (.+)$", line)
        if top:
            inside = top.group(1) == module
            continue
        if not inside:
            continue
        sub = re.match(r"^    • (.+)$", line)
        if sub:
            folder = sub.group(1)
            tree[folder] = []
            continue
        leaf = re.match(r"^      • (.+)$", line)
        if leaf and folder is not None:
            tree[folder].append(leaf.group(1))
    return {name: items for name, items in tree.items() if items}


def _spec_tree(spec: dict[str, Any], module: str) -> dict[str, list[str]]:
    tree: dict[str, list[str]] = {}
    for item in spec["paths"].values():
        for verb, op in item.items():
            if verb not in VERBS:
                continue
            module_name, _, folder = op["x-apidog-folder"].partition("/")
            if module_name == module:
                tree.setdefault(folder, []).append(op["summary"])
    return tree


STORE_SEED = _seed_tree("Store API")
ADMIN_SEED = _seed_tree("Admin API")


def test_the_seed_page_is_read() -> None:
    # guards the parser: an empty or misread seed would make every comparison below vacuous
    assert list(STORE_SEED)[:3] == ["Pet", "Chat", "Store"]
    assert STORE_SEED["User"][0] == "Create User"
    assert len(STORE_SEED["Schemas"]) == 9


def test_folders_come_in_the_seeds_order() -> None:
    seed_folders = [f for f in STORE_SEED if f not in DOC_FOLDERS and f != "Schemas"]
    assert list(_spec_tree(SPEC, "Store API")) == seed_folders


@pytest.mark.parametrize(
    "folder", [f for f in STORE_SEED if f not in DOC_FOLDERS | {"Schemas", "Webhooks"}]
)
def test_each_folder_opens_with_the_seeds_operations_in_order(folder: str) -> None:
    ours = _spec_tree(SPEC, "Store API")[folder]
    assert ours[: len(STORE_SEED[folder])] == STORE_SEED[folder]


def test_webhook_events_are_documented_in_the_seeds_order() -> None:
    # OpenAPI 3.0.3 has no top-level `webhooks`: the events are the callbacks of the
    # subscription operation, which sits in the Webhooks folder
    create = SPEC["paths"]["/webhooks"]["post"]
    assert create["x-apidog-folder"] == "Store API/Webhooks"
    summaries = [
        op["summary"]
        for callback in create["callbacks"].values()
        for item in callback.values()
        for verb, op in item.items()
        if verb in VERBS
    ]
    assert summaries == STORE_SEED["Webhooks"]


def test_the_seeds_schemas_lead_the_components_in_order() -> None:
    schemas = SPEC["components"]["schemas"]
    names = [schema.get("title", name) for name, schema in list(schemas.items())[:9]]
    assert names == STORE_SEED["Schemas"]


def test_the_comparison_catches_a_swapped_pair() -> None:
    # the check above is order-sensitive: swapping Get Pet and Update Pet must break it
    paths = dict(SPEC["paths"])
    item = dict(paths["/pets/{id}"])
    get, put = item.pop("get"), item.pop("put")
    paths["/pets/{id}"] = {"put": put, "get": get, **item}
    swapped = _spec_tree({"paths": paths}, "Store API")["Pet"]
    assert swapped[: len(STORE_SEED["Pet"])] != STORE_SEED["Pet"]


@pytest.mark.skipif(not SHARED.exists(), reason="the shared reference is not beside this clone")
def test_the_committed_copy_is_the_seeds_navigation() -> None:
    seed = SHARED.read_text(encoding="utf-8").splitlines()
    copy = COPY.read_text(encoding="utf-8").splitlines()
    assert seed[: len(copy)] == copy
    assert copy[-1].strip() == "• AuditLog"


# --- the Admin API module (spec/admin.yaml) ---


def test_the_seeds_admin_module_is_read() -> None:
    assert list(ADMIN_SEED) == [
        "Dashboard",
        "User Management",
        "Order Management",
        "Audit Logs",
        "Schemas",
    ]
    assert ADMIN_SEED["Schemas"] == ["AuditLog"]


def test_admin_folders_come_in_the_seeds_order() -> None:
    seed_folders = [f for f in ADMIN_SEED if f != "Schemas"]
    assert list(_spec_tree(ADMIN_SPEC, "Admin API")) == seed_folders
    assert _spec_tree(ADMIN_SPEC, "Store API") == {}  # no operation strays into the other module
    assert _spec_tree(SPEC, "Admin API") == {}


@pytest.mark.parametrize("folder", [f for f in ADMIN_SEED if f != "Schemas"])
def test_each_admin_folder_opens_with_the_seeds_operations_in_order(folder: str) -> None:
    ours = _spec_tree(ADMIN_SPEC, "Admin API")[folder]
    assert ours[: len(ADMIN_SEED[folder])] == ADMIN_SEED[folder]


def test_the_admin_modules_extra_operation_follows_the_seeds() -> None:
    assert _spec_tree(ADMIN_SPEC, "Admin API")["Audit Logs"] == [
        "Get Audit Log Details",
        "List Audit Logs",
    ]


def test_the_seeds_admin_schema_leads_its_components() -> None:
    schemas = ADMIN_SPEC["components"]["schemas"]
    names = [schema.get("title", name) for name, schema in list(schemas.items())[:1]]
    assert names == ADMIN_SEED["Schemas"]
