"""The reconciliation on a small synthetic directory whose report is worked out by hand below.

Fabrikam, scope OU=Sync,DC=fabrikam,DC=com:

| AD user | where | in Azure AD? | note |
|---|---|---|---|
| alice@fabrikam.com | OU=Staff,OU=Sync | yes | holds smtp:al@fabrikam.com (AD and Azure AD) |
| al@fabrikam.com | OU=Staff,OU=Sync | no (new hire) | UPN = alice's proxy: the seed's cloud-only conflict |
| carl@fabrikam.com | OU=Staff,OU=Sync | yes | a sync error reported by two exports |
| dora@fabrikam.com | OU=Disabled | no | outside the scope |
| erin@fabrikam.com | OU=Disabled | yes | outside the scope, synced before the move |

Azure AD also has admin@fabrikam.onmicrosoft.com (cloud-only) and gone@fabrikam.com (ImmutableID of
a deleted AD user). Files go through the real ingest into the ``warehouse`` fixture.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from ingest.backfill import ingest_paths
from warehouse.identity import IdentityError, ReconcileOptions, reconcile
from warehouse.store import Warehouse

G = {
    n: str(uuid.UUID(int=i * 0x1111_1111_1111_1111_1111, version=4))
    for i, n in enumerate(["alice", "al", "carl", "dora", "erin", "gone"], 1)
}
IID = {n: base64.b64encode(uuid.UUID(g).bytes_le).decode() for n, g in G.items()}
SCOPE = "OU=Sync,DC=fabrikam,DC=com"
UTC = dt.UTC


def dn(name: str, ou: str) -> str:
    return f"CN={name.title()},{ou},DC=fabrikam,DC=com"


AD_CSV = "\n".join(
    [
        "#TYPE Selected.Microsoft.ActiveDirectory.Management.ADUser",
        '"SamAccountName","UserPrincipalName","Name","ObjectGUID","DistinguishedName","Enabled","mail","proxyAddresses"',
        f'"alice","alice@fabrikam.com","Alice","{G["alice"]}","{dn("alice", "OU=Staff,OU=Sync")}","True","alice@fabrikam.com","SMTP:alice@fabrikam.com;smtp:al@fabrikam.com"',
        f'"al","al@fabrikam.com","Al","{G["al"]}","{dn("al", "OU=Staff,OU=Sync")}","True","albert@fabrikam.com","SMTP:albert@fabrikam.com"',
        f'"carl","carl@fabrikam.com","Carl","{G["carl"]}","{dn("carl", "OU=Staff,OU=Sync")}","True","carl@fabrikam.com","SMTP:carl@fabrikam.com;smtp:c@fabrikam.com"',
        f'"dora","dora@fabrikam.com","Dora","{G["dora"]}","{dn("dora", "OU=Disabled")}","False","",""',
        f'"erin","erin@fabrikam.com","Erin","{G["erin"]}","{dn("erin", "OU=Disabled")}","False","",""',
    ]
)
AAD_CSV = "\n".join(
    [
        '"UserPrincipalName","DisplayName","ObjectId","ImmutableId","LastDirSyncTime","ProxyAddresses"',
        f'"alice@fabrikam.com","Alice","{uuid.uuid4()}","{IID["alice"]}","3/1/2021 10:00:00 AM","SMTP:alice@fabrikam.com;smtp:al@fabrikam.com"',
        f'"carl@fabrikam.com","Carl","{uuid.uuid4()}","{IID["carl"]}","3/1/2021 10:00:00 AM","SMTP:carl@fabrikam.com"',
        f'"erin@fabrikam.com","Erin","{uuid.uuid4()}","{IID["erin"]}","3/2/2021 8:30:00 AM","SMTP:erin@fabrikam.com"',
        f'"admin@fabrikam.onmicrosoft.com","Admin","{uuid.uuid4()}","","",""',
        f'"gone@fabrikam.com","Gone","{uuid.uuid4()}","{IID["gone"]}","1/15/2021 7:00:00 AM","SMTP:gone@fabrikam.com"',
    ]
)
HEALTH_CSV = "\n".join(
    [
        '"Error Type","UserPrincipalName","Source Anchor","Attribute","Value","Detected"',
        f'"AttributeValueMustBeUnique","carl@fabrikam.com","{IID["carl"]}","ProxyAddresses","smtp:c@fabrikam.com","2021-03-02T09:00:00Z"',
        '"InvalidSoftMatch","al@fabrikam.com","","UserPrincipalName","al@fabrikam.com","2021-03-02T09:05:00Z"',
    ]
)
MSOL_CSV = "\n".join(
    [
        '"DisplayName","ImmutableId","ObjectType","ErrorCategory","PropertyName","PropertyValue","WhenStarted","ObjectId"',
        f'"Carl","{IID["carl"]}","User","PropertyConflict","ProxyAddress","smtp:C@fabrikam.com","2021-03-02T08:00:00Z",""',
    ]
)


@pytest.fixture
def directory(warehouse: Warehouse, tmp_path: Path) -> Warehouse:
    folder = tmp_path / "exports"
    folder.mkdir()
    for name, text in {
        "ad.csv": AD_CSV,
        "aad.csv": AAD_CSV,
        "health.csv": HEALTH_CSV,
        "msol.csv": MSOL_CSV,
    }.items():
        (folder / name).write_text(text + "\n", encoding="utf-8")
    stats = ingest_paths(warehouse, [folder])
    assert stats.rows == {"ad_users": 5, "aad_users": 5, "sync_errors": 3}
    assert stats.rejects == 0
    return warehouse


def col(report_table: object, name: str) -> list[object]:
    return report_table.column(name).to_pylist()  # type: ignore[attr-defined]


def test_report_with_scope(directory: Warehouse) -> None:
    report = reconcile(directory, ReconcileOptions(scope_ous=(SCOPE,)))
    s = report.sections
    assert col(s["ad_not_in_azure"], "user_principal_name") == ["al@fabrikam.com"]
    assert col(s["ad_not_in_azure"], "sync_errors") == ["InvalidSoftMatch UserPrincipalName"]
    assert col(s["azure_not_in_ad"], "user_principal_name") == [
        "admin@fabrikam.onmicrosoft.com",
        "gone@fabrikam.com",
    ]
    assert col(s["azure_not_in_ad"], "reason") == [
        "cloud-only (no ImmutableID)",
        "no AD user with this objectGUID",
    ]
    assert col(s["ad_out_of_scope"], "user_principal_name") == ["dora@fabrikam.com", "erin@fabrikam.com"]
    assert col(s["ad_out_of_scope"], "in_azure") == [False, True]
    errors = s["users_with_sync_errors"].to_pylist()
    assert [
        (e["user_principal_name"], e["in_azure"], e["in_ad"], e["error_type"], e["reports"]) for e in errors
    ] == [
        ("al@fabrikam.com", False, True, "InvalidSoftMatch", 1),
        ("carl@fabrikam.com", True, True, "AttributeValueMustBeUnique", 2),  # two exports, one error
    ]
    collisions = s["upn_proxy_collisions"].to_pylist()
    assert [(c["user_principal_name"], c["held_by"], c["address"], c["found_in"]) for c in collisions] == [
        ("al@fabrikam.com", "alice@fabrikam.com", "smtp:al@fabrikam.com", "AD, Azure AD")
    ]
    assert report.summary == {
        "ad_users": 5,
        "ad_users_in_scope": 3,
        "ad_users_out_of_scope": 2,
        "azure_users": 5,
        "azure_users_synced": 4,
        "azure_users_cloud_only": 1,
        "matched": 3,
        "ad_not_in_azure": 1,
        "azure_not_in_ad": 2,
        "objects_with_sync_errors": 2,
        "upn_proxy_collisions": 1,
        "last_dir_sync_time": dt.datetime(2021, 3, 2, 8, 30, tzinfo=UTC),
        "last_sync_error": dt.datetime(2021, 3, 2, 9, 5, tzinfo=UTC),
        "scope_ous": [SCOPE],
    }


def test_without_scope_every_ad_user_counts(directory: Warehouse) -> None:
    report = reconcile(directory)
    assert col(report.sections["ad_not_in_azure"], "user_principal_name") == [
        "al@fabrikam.com",
        "dora@fabrikam.com",
    ]
    assert report.sections["ad_out_of_scope"].num_rows == 0
    assert report.summary["ad_users_in_scope"] == 5


def test_missing_exports_name_the_command_to_run(warehouse: Warehouse) -> None:
    with pytest.raises(IdentityError, match=r"no ad_users and no aad_users table.*Get-ADUser.*Get-MsolUser"):
        reconcile(warehouse)


def knownfix(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "knownfix.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_cli_json_and_csv(directory: Warehouse, tmp_path: Path) -> None:
    out = tmp_path / "report"
    proc = knownfix(
        "identity", "reconcile", "-w", str(directory.root), "--scope-ou", SCOPE, "--json", "--csv", str(out)
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["summary"]["ad_not_in_azure"] == 1
    assert [r["user_principal_name"] for r in doc["sections"]["upn_proxy_collisions"]] == ["al@fabrikam.com"]
    assert sorted(p.name for p in out.iterdir()) == [
        "ad_not_in_azure.csv",
        "ad_out_of_scope.csv",
        "azure_not_in_ad.csv",
        "summary.csv",
        "upn_proxy_collisions.csv",
        "users_with_sync_errors.csv",
    ]
    assert "al@fabrikam.com" in (out / "ad_not_in_azure.csv").read_text(encoding="utf-8")
    table = knownfix("identity", "reconcile", "-w", str(directory.root), "--scope-ou", SCOPE)
    assert table.returncode == 0 and "al@fabrikam.com" in table.stdout


def test_cli_without_exports_is_one_line(tmp_path: Path) -> None:
    proc = knownfix("identity", "reconcile", "-w", str(tmp_path / "empty"))
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error:") and "ad_users" in proc.stderr
