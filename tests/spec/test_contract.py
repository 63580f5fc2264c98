"""The contract run's own rules (contract/): the statuses valid data may get per operation are
derived from the spec and documented there, the generated Schemathesis configuration is one that
Schemathesis accepts and applies per operation, and a server error fails the run."""

from __future__ import annotations

import copy
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml
from schemathesis.config import SchemathesisConfig

from contract.run import server_errors, write_config
from contract.statuses import ADMIN_OVERRIDES, OVERRIDES, operations, positive_statuses
from settings import ROOT

SPEC: dict[str, Any] = yaml.safe_load((ROOT / "spec" / "openapi.yaml").read_text())
ADMIN_SPEC: dict[str, Any] = yaml.safe_load((ROOT / "spec" / "admin.yaml").read_text())
SACRIFICIAL = "019b4138-e0af-70b9-8f0c-000000000001"


def test_every_expected_status_is_documented_on_its_operation() -> None:
    table = positive_statuses(SPEC)
    documented = {op["operationId"]: set(op["responses"]) for _, _, op, _ in operations(SPEC)}
    assert set(table) == set(documented)
    for operation_id, statuses in table.items():
        assert set(statuses) <= documented[operation_id], operation_id
        assert any(s.startswith("2") for s in statuses), operation_id
    assert set(OVERRIDES) <= set(documented)


def test_the_admin_modules_expected_statuses_are_documented_too() -> None:
    table = positive_statuses(ADMIN_SPEC, ADMIN_OVERRIDES)
    documented = {op["operationId"]: set(op["responses"]) for _, _, op, _ in operations(ADMIN_SPEC)}
    assert set(table) == set(documented)
    for operation_id, statuses in table.items():
        assert set(statuses) <= documented[operation_id], operation_id
        assert "403" not in statuses  # the fuzzing admin is never refused
    assert set(ADMIN_OVERRIDES) <= set(documented)


def test_statuses_follow_the_request_not_a_global_list() -> None:
    table = positive_statuses(SPEC)
    # Shape errors are never acceptable answers to valid data, unless an override says why.
    assert table["createPet"] == ["201", "429"]
    assert table["getPet"] == ["200", "304", "404", "429"]  # 304: If-None-Match (a 3xx)
    assert table["updatePet"] == ["200", "404", "409", "412", "429"]
    # 401 only where the request carries a credential generated data cannot know.
    assert "401" in table["createAuthToken"]
    assert "401" in table["getOrder"]
    assert "401" not in table["createPet"]
    assert "401" not in table["listPets"]
    # 422 for an Idempotency-Key reused with another request; 403 nowhere (tenant pinned).
    assert "422" in table["createOrder"]
    assert "422" not in table["updatePet"]
    assert not any("403" in statuses for statuses in table.values())
    assert table["uploadPetImage"] == ["201", "400", "404", "409", "413", "415", "422", "429"]
    assert table["getPetImage"] == ["200", "304", "404", "429"]


def test_a_newly_documented_state_status_needs_no_edit() -> None:
    spec = copy.deepcopy(SPEC)
    responses = spec["paths"]["/orders"]["post"]["responses"]
    responses["503"] = {"description": "busy"}
    responses["418"] = {"description": "a status that is about the request"}
    statuses = positive_statuses(spec)["createOrder"]
    assert "503" in statuses
    assert "418" not in statuses


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SchemathesisConfig:
    identities = {
        "schemaVersion": "1.0",
        "auth": [
            {"name": n, "fixedHeaders": [{"name": "Authorization", "value": "Bearer t"}]}
            for n in ("admin", "alice", "bob")
        ],
    }
    (tmp_path / "identities.json").write_text(json.dumps(identities))
    monkeypatch.setenv("PETSTORE_WFC_FILE", str(tmp_path / "identities.json"))
    return SchemathesisConfig.from_path(write_config(SPEC, tmp_path, SACRIFICIAL))


def test_schemathesis_applies_the_generated_configuration(config: SchemathesisConfig) -> None:
    schema = schemathesis.openapi.from_dict(copy.deepcopy(SPEC), config=config)
    table = positive_statuses(SPEC)
    for result in schema.get_all_operations():
        op = result.ok()  # type: ignore[union-attr]  # an Err would fail the test here too
        for phase in ("examples", "coverage", "fuzzing", "stateful"):
            checks = schema.config.checks_config_for(operation=op, phase=phase)
            assert (
                checks.positive_data_acceptance.expected_statuses
                == table[op.definition.raw["operationId"]]
            )
            assert checks.unsupported_method.enabled  # /pets/search included
        # QUERY is never probed as an undeclared method, whatever the operation or the seed.
        assert "query" not in schema.config.phases_for(operation=op).coverage.unexpected_methods
    project = config.projects.default
    assert project.parameters["header.X-Tenant-ID"].dictionary == "tenant"
    tenant = SPEC["components"]["parameters"]["TenantId"]["example"]
    assert [e.value for e in project.dictionaries["tenant"].entries] == [tenant]
    delete_user = next(o for o in project.operations.operations if o.parameters)
    assert delete_user.parameters == {"path.id": SACRIFICIAL}


def test_server_errors_are_found_with_their_tracebacks() -> None:
    log = "\n".join(
        [
            "INFO:     Started server process [1]",
            json.dumps({"level": "warning", "logger": "petstore", "msg": "slow"}),
            json.dumps({"level": "error", "logger": "petstore", "msg": "boom", "exc": "Tb\nE: x"}),
            "WARNING:  Invalid HTTP request received.",
            "ERROR:    Exception in ASGI application",
            "Traceback (most recent call last):",
            '  File "app.py", line 1, in <module>',
            "RuntimeError: kaput",
            "INFO:     Shutting down",
            "Traceback (most recent call last):",
            "ValueError: printed, not logged",
        ]
    )
    found = server_errors(log)
    assert len(found) == 3
    assert found[0].startswith('{"level": "error"')
    assert found[0].endswith("Tb\nE: x")
    assert found[1].splitlines()[0] == "ERROR:    Exception in ASGI application"
    assert found[1].endswith("RuntimeError: kaput")
    assert found[2].endswith("ValueError: printed, not logged")
    assert server_errors("INFO:     fine\nWARNING:  Invalid HTTP request received.") == []


def test_the_admin_run_fuzzes_every_admin_operation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    identities = {"schemaVersion": "1.0", "auth": [
        {"name": n, "fixedHeaders": [{"name": "Authorization", "value": "Bearer t"}]}
        for n in ("admin", "alice", "bob")
    ]}  # fmt: skip
    (tmp_path / "identities.json").write_text(json.dumps(identities))
    monkeypatch.setenv("PETSTORE_WFC_FILE", str(tmp_path / "identities.json"))
    path = write_config(ADMIN_SPEC, tmp_path, "", name="admin.toml", overrides=ADMIN_OVERRIDES)
    config = SchemathesisConfig.from_path(path)
    schema = schemathesis.openapi.from_dict(copy.deepcopy(ADMIN_SPEC), config=config)
    seen = set()
    for result in schema.get_all_operations():
        op = result.ok()  # type: ignore[union-attr]
        operation_id = op.definition.raw["operationId"]
        seen.add(operation_id)
        assert schema.config.operations.get_for_operation(op).enabled, operation_id
    assert {"listAuditLogs", "getAuditLogDetails", "forceCancelOrder"} <= seen


def test_each_modules_configuration_keeps_only_its_own_operation_blocks() -> None:
    from contract.run import CONFIG, _base_config

    assert _base_config(SPEC) == CONFIG.read_text()  # the Store API's: unchanged
    admin = tomllib.loads(_base_config(ADMIN_SPEC))
    assert "operations" not in admin  # none of the Store API's blocks names an admin operation
    assert admin["phases"] == tomllib.loads(CONFIG.read_text())["phases"]
