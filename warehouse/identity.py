"""AD <-> Azure AD reconciliation and the views that tie sync errors to objects and events.

The field notes behind it (seed 000): Azure AD Connect links an AD user to its Azure AD copy by
ImmutableID = base64(objectGUID in .NET byte order). Counting users on both sides proves nothing;
matching every AD user's computed ImmutableID against Azure AD does, and shows who never synced,
who is left over in the cloud, who is outside the sync scope, and which users carry sync errors.
It also predicts the cloud-only conflict of the seed before it happens: Azure AD gives a synced
mail user the secondary address ``smtp:<UPN>``, so an on-premises UPN that equals another user's
proxy address will fail with AttributeValueMustBeUnique although AD itself sees no duplicate.

Everything is SQL over one DuckDB session; the report is a set of Arrow tables plus a summary.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

from parsers.sync_errors_common import SCHEMA as SYNC_ERRORS_SCHEMA
from parsers.sync_errors_common import TABLE as SYNC_ERRORS
from warehouse.errors import WarehouseError
from warehouse.store import Warehouse

AD, AAD, EVENTS = "ad_users", "aad_users", "events"

#: Event providers whose events concern directory synchronization.
ADSYNC_PROVIDERS = (
    "ADSync",
    "Directory Synchronization",
    "Microsoft Azure AD Sync",
    "AzureADConnectHealthSyncMonitor",
)

SECTIONS = (
    "ad_not_in_azure",
    "azure_not_in_ad",
    "users_with_sync_errors",
    "ad_out_of_scope",
    "upn_proxy_collisions",
)


class IdentityError(WarehouseError):
    """The reconciliation cannot run (an export is missing); the message says which to ingest."""


@dataclass(frozen=True)
class ReconcileOptions:
    #: Only AD users under one of these OUs are in the sync scope (none given: all are).
    scope_ous: tuple[str, ...] = ()
    #: LIKE patterns on ``source_file`` choosing which ingested exports count (default: all,
    #: the latest row per user winning).
    ad_source: str | None = None
    aad_source: str | None = None


@dataclass
class ReconcileReport:
    summary: dict[str, object]
    sections: dict[str, pa.Table] = field(default_factory=dict)


# The latest row of each user, from the chosen exports; scope marks AD users under a scope OU.
_AD = f"""
create temp table ad as
select * exclude (rn),
       (select count(*) = 0 from scope) or exists (
           select 1 from scope where ends_with(lower(d.distinguished_name), ',' || scope.ou)
       ) as in_scope
from (select *, row_number() over (partition by object_guid order by _version desc, source_offset desc) as rn
      from {AD} where $1::varchar is null or source_file like $1) d
where rn = 1
"""
_AAD = f"""
create temp table aad as
select * exclude (rn)
from (select *, row_number() over (partition by coalesce(object_id, lower(user_principal_name))
                                   order by _version desc, source_offset desc) as rn
      from {AAD} where $1::varchar is null or source_file like $1)
where rn = 1
"""
# One row per object and distinct error, whatever export reported it; objects are keyed by
# objectGUID when any identifier leads to it, else by UPN / object id / DN.
_ERRORS_BY_OBJECT = f"""
create temp table errors_by_object as
with e as (
    select s.*,
           coalesce(s.object_guid, object_guid(s.source_anchor),
                    (select z.object_guid from aad z where z.object_id = s.object_id and z.object_guid is not null limit 1),
                    (select a.object_guid from ad a where lower(a.user_principal_name) = lower(s.upn) limit 1)) as guid
    from {SYNC_ERRORS} s
)
select coalesce(guid, lower(upn), object_id, lower(dn)) as object_key,
       any_value(guid) as object_guid, any_value(upn) as upn, any_value(object_id) as object_id,
       error_type, attribute, lower(conflicting_value) as conflicting_value,
       min(time) as first_seen, max(time) as last_seen, count(*) as reports,
       string_agg(distinct export_format, ', ' order by export_format) as reported_by
from e group by all
"""

_QUERIES: dict[str, str] = {
    "ad_not_in_azure": """
        select a.user_principal_name, a.sam_account_name, a.display_name, a.distinguished_name, a.enabled,
               a.object_guid, a.immutable_id,
               (select string_agg(distinct coalesce(b.error_type, '?') || coalesce(' ' || b.attribute, ''), '; ')
                from errors_by_object b where b.object_guid = a.object_guid) as sync_errors
        from ad a
        where a.in_scope and not exists (select 1 from aad z where z.immutable_id = a.immutable_id)
        order by lower(a.user_principal_name), a.object_guid""",
    "azure_not_in_ad": """
        select z.user_principal_name, z.display_name, z.object_id, z.immutable_id, z.object_guid,
               z.last_dir_sync_time,
               case when z.immutable_id is null then 'cloud-only (no ImmutableID)'
                    when z.object_guid is null then 'ImmutableID is not an objectGUID'
                    else 'no AD user with this objectGUID' end as reason
        from aad z
        where z.immutable_id is null or not exists (select 1 from ad a where a.immutable_id = z.immutable_id)
        order by lower(z.user_principal_name)""",
    "users_with_sync_errors": """
        select coalesce(z.user_principal_name, a.user_principal_name, b.upn) as user_principal_name,
               coalesce(z.display_name, a.display_name) as display_name,
               z.user_principal_name is not null as in_azure, a.object_guid is not null as in_ad,
               b.error_type, b.attribute, b.conflicting_value, b.first_seen, b.last_seen, b.reports,
               b.reported_by, b.object_guid
        from errors_by_object b
        left join aad z on z.object_guid = b.object_guid or (b.object_guid is null and z.object_id = b.object_id)
        left join ad a on a.object_guid = b.object_guid
        order by lower(coalesce(z.user_principal_name, a.user_principal_name, b.upn)), b.error_type, b.attribute""",
    "ad_out_of_scope": """
        select a.user_principal_name, a.sam_account_name, a.display_name, a.distinguished_name, a.parent_dn,
               a.enabled, a.object_guid,
               exists (select 1 from aad z where z.immutable_id = a.immutable_id) as in_azure
        from ad a where not a.in_scope
        order by lower(a.distinguished_name)""",
    "upn_proxy_collisions": """
        with addresses as (
            select 'AD' as found_in, object_guid, user_principal_name as holder, unnest(proxy_addresses) as address
            from ad where proxy_addresses is not null
            union all
            select 'AD mail', object_guid, user_principal_name, 'SMTP:' || mail from ad where mail is not null
            union all
            select 'Azure AD', object_guid, user_principal_name, unnest(proxy_addresses)
            from aad where proxy_addresses is not null
        ), smtp as (
            select *, lower(regexp_replace(address, '^smtp:', '', 'i')) as smtp_address
            from addresses where regexp_matches(address, '^smtp:', 'i')
        ), pairs as (
            select a.user_principal_name, a.display_name, a.distinguished_name, s.holder as held_by,
                   'smtp:' || s.smtp_address as address,
                   string_agg(distinct s.found_in, ', ' order by s.found_in) as found_in
            from ad a join smtp s on s.smtp_address = lower(a.user_principal_name)
            where a.in_scope and a.user_principal_name is not null
              and s.object_guid is distinct from a.object_guid
              and lower(coalesce(s.holder, '')) <> lower(a.user_principal_name)
            group by a.user_principal_name, a.display_name, a.distinguished_name, s.holder, s.smtp_address
        )
        select *, 'AttributeValueMustBeUnique on ProxyAddresses: Azure AD adds ' || address || ' to '
                  || user_principal_name || ' but ' || held_by || ' already has it' as predicted_error
        from pairs order by lower(user_principal_name), lower(held_by)""",
}


def _require(wh: Warehouse) -> list[str]:
    names = wh.table_names()
    missing = [t for t in (AD, AAD) if t not in names]
    if missing:
        hints = {
            AD: "Get-ADUser -Filter * -Properties mail,proxyAddresses | Select SamAccountName,UserPrincipalName,"
            "Name,ObjectGUID,DistinguishedName,Enabled,mail,@{n='proxyAddresses';e={$_.proxyAddresses -join ';'}} "
            "| Export-Csv ad_users.csv -NoTypeInformation",
            AAD: "Get-MsolUser -All | Select UserPrincipalName,DisplayName,ObjectId,ImmutableId,LastDirSyncTime,"
            "@{n='ProxyAddresses';e={$_.ProxyAddresses -join ';'}} | Export-Csv aad_users.csv -NoTypeInformation",
        }
        raise IdentityError(
            f"no {' and no '.join(missing)} table in {wh.root}: ingest the export(s) first, made with "
            + " and ".join(hints[m] for m in missing)
        )
    return names


def _session(wh: Warehouse, options: ReconcileOptions) -> duckdb.DuckDBPyConnection:
    from warehouse.query import connect  # warehouse.query imports the macros, which stay import-free

    names = _require(wh)
    con = connect(wh)
    con.execute("create temp table scope (ou varchar)")
    for ou in options.scope_ous:
        con.execute("insert into scope values (lower(trim(?)))", [ou])
    if SYNC_ERRORS not in names:
        con.register(SYNC_ERRORS, SYNC_ERRORS_SCHEMA.empty_table())
    con.execute(_AAD, [options.aad_source])
    con.execute(_AD, [options.ad_source])
    con.execute(_ERRORS_BY_OBJECT)
    return con


def reconcile(wh: Warehouse, options: ReconcileOptions | None = None) -> ReconcileReport:
    """The seed's report: who is missing on which side, who is out of scope, who has errors."""
    options = options or ReconcileOptions()
    con = _session(wh, options)
    try:
        sections = {name: con.sql(_QUERIES[name]).to_arrow_table() for name in SECTIONS}
        row = con.sql(
            """select (select count(*) from ad), (select count(*) from ad where in_scope),
                      (select count(*) from aad), (select count(*) from aad where immutable_id is not null),
                      (select count(*) from ad a where exists (select 1 from aad z where z.immutable_id = a.immutable_id)),
                      (select max(last_dir_sync_time) from aad), (select max(last_seen) from errors_by_object),
                      (select count(distinct object_key) from errors_by_object)"""
        ).fetchall()[0]
    finally:
        con.close()
    summary: dict[str, object] = {
        "ad_users": row[0],
        "ad_users_in_scope": row[1],
        "ad_users_out_of_scope": row[0] - row[1],
        "azure_users": row[2],
        "azure_users_synced": row[3],
        "azure_users_cloud_only": row[2] - row[3],
        "matched": row[4],
        "ad_not_in_azure": sections["ad_not_in_azure"].num_rows,
        "azure_not_in_ad": sections["azure_not_in_ad"].num_rows,
        "objects_with_sync_errors": row[7],
        "upn_proxy_collisions": sections["upn_proxy_collisions"].num_rows,
        "last_dir_sync_time": row[5],
        "last_sync_error": row[6],
        "scope_ous": list(options.scope_ous),
    }
    return ReconcileReport(summary, sections)


# --- ADSync events joined with sync errors ---------------------------------------------------

#: ADSync / Directory Synchronization events, with the object identifiers their messages carry
#: ("Anchor : <ImmutableID>, Dn : CN=..." in password-sync events, "Tracking Id: ..." in export
#: errors), joined to ``sync_errors`` on tracking id, source anchor, DN or UPN.
SYNC_ERROR_EVENTS = """
with ev as (
    select time_created, computer, provider, event_id, message, event_data, source_file, source_offset,
           nullif(regexp_extract(message, 'Anchor\\s*:\\s*([A-Za-z0-9+/]{{22}}==)', 1), '') as anchor,
           lower(nullif(regexp_extract(message, 'Tracking\\s*Id\\s*:\\s*([0-9a-fA-F-]{{36}})', 1), '')) as tracking,
           lower(nullif(trim(regexp_extract(message, '\\bDn\\s*:\\s*(CN=.+?)(?:,\\s*Change Date|\\r?\\n|$)', 1)), '')) as dn
    from {events} where provider in ({providers})
)
select s.upn, s.dn as error_dn, s.error_type, s.attribute, s.conflicting_value, s.time as error_time,
       ev.time_created as event_time, ev.computer, ev.provider, ev.event_id, ev.message,
       case when ev.tracking = s.tracking_id then 'tracking id'
            when ev.anchor = s.source_anchor
              or list_contains(map_values(ev.event_data), s.source_anchor) then 'source anchor'
            when ev.dn = lower(s.dn) then 'dn'
            else 'upn' end as matched_by,
       s.source_file as error_file, ev.source_file as event_file, ev.source_offset as event_offset
from {errors} s join ev
  on ev.tracking = s.tracking_id
  or ev.anchor = s.source_anchor
  or list_contains(map_values(ev.event_data), s.source_anchor)
  or ev.dn = lower(s.dn)
  or (s.upn is not null and contains(lower(ev.message), lower(s.upn)))
order by ev.time_created, s.upn
"""


def sync_error_events_sql() -> str:
    providers = ", ".join(f"'{p}'" for p in ADSYNC_PROVIDERS)  # constants of this module, not input
    return SYNC_ERROR_EVENTS.format(events=EVENTS, errors=SYNC_ERRORS, providers=providers)


def sync_error_events(wh: Warehouse) -> pa.Table:
    """Each sync error beside the ADSync events about the same object."""
    from warehouse.query import connect

    names = wh.table_names()
    missing = [t for t in (SYNC_ERRORS, EVENTS) if t not in names]
    if missing:
        raise IdentityError(
            f"no {' and no '.join(missing)} table in {wh.root}: ingest sync-error exports and the "
            "Application log of the AAD Connect server (evtx/XML/CSV) first"
        )
    con = connect(wh, tables=[SYNC_ERRORS, EVENTS])
    try:
        return con.sql(sync_error_events_sql()).to_arrow_table()
    finally:
        con.close()


def create_views(con: duckdb.DuckDBPyConnection, tables: list[str]) -> list[str]:
    """Define the identity views in a session that already has ``tables`` registered.

    DuckDB binds a view (and a table macro) when it is created, so these cannot live with the
    scalar macros that every session defines before its tables exist.
    """
    created = []
    if SYNC_ERRORS in tables and EVENTS in tables:
        con.execute(f"create or replace temp view sync_error_events as {sync_error_events_sql()}")
        created.append("sync_error_events")
    return created
