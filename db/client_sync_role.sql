-- The functions' own login, `client_sync`: it calls the SQL surface as itself and can do nothing else. Its only
-- privileges are EXECUTE on the surface's functions, granted by the migrations (each function that must see past
-- row level security is a security definer owned by the tables' owner). It has no privilege on any table, and
-- the one role it may set is `authenticated`, which row level security holds to a therapist's own rows: a booking
-- switches to it with set_config('role', ...) (which needs the session's login to be a member) to book as the
-- therapist. Never service_role or a table owner, which see past row level security; no superuser, owner of
-- nothing, no DDL. NOINHERIT: `authenticated`'s privileges are not the login's own.
--
-- Written once for both projects: db/project_a/supabase/roles.sql and db/project_b/supabase/roles.sql are
-- links to this file, the Supabase CLI's custom roles file. `supabase db push --include-roles` runs it before
-- the migrations (and `supabase db reset`/`start` when they set up a database), as `python -m ops.migrate`
-- does; it is not a migration, and nothing records it: it only creates what is missing and takes away
-- memberships and table, schema or database privileges that do not belong, so it may run again, in several
-- databases of one server, even at the same time. EXECUTE on functions it leaves alone: the migrations grant it,
-- once, and this file runs before every push (a grant made by hand is found by test_least_privilege.py).
--
-- Created without a password; set one as an administrator (docs/deployment.md):
--   alter role client_sync with password '...';

do $$
declare
  v_role oid;
  v_pg16 boolean := current_setting('server_version_num')::integer >= 160000;
  r record;
begin
  if not exists (select 1 from pg_roles where rolname = 'client_sync') then
    begin
      create role client_sync login noinherit nosuperuser nocreatedb nocreaterole nobypassrls noreplication;
    exception when duplicate_object or unique_violation then
      null;  -- another database of this server created it at the same moment
    end;
  end if;
  v_role := 'client_sync'::regrole;

  -- A role that existed before (made by hand?) is brought to these attributes; only a superuser may take
  -- superuser, replication or bypassrls away, so this fails loudly rather than leave them.
  if exists (select 1 from pg_roles where oid = v_role
              and (rolsuper or rolcreatedb or rolcreaterole or rolbypassrls or rolreplication or rolinherit
                   or not rolcanlogin)) then
    alter role client_sync login noinherit nosuperuser nocreatedb nocreaterole nobypassrls noreplication;
  end if;

  begin
    grant authenticated to client_sync;
  exception when unique_violation then
    null;  -- granted at the same moment by a migration in another database
  end;

  -- No other membership (service_role, which an earlier version granted, included), no admin option (it
  -- could grant the role on), and on PostgreSQL 16 and later no inherited membership either (there, a grant's
  -- own inherit option counts, not the role's).
  for r in
    select g.rolname as granted, gr.rolname as grantor, m.admin_option,
           coalesce((to_jsonb(m) ->> 'inherit_option')::boolean, false) as inherit_option
      from pg_auth_members m
      join pg_roles g on g.oid = m.roleid
      join pg_roles gr on gr.oid = m.grantor
     where m.member = v_role
  loop
    if r.granted <> 'authenticated' then
      execute format('revoke %I from client_sync', r.granted)
              || case when v_pg16 then format(' granted by %I', r.grantor) else '' end;
      continue;
    end if;
    if r.admin_option then
      execute format('revoke admin option for %I from client_sync', r.granted)
              || case when v_pg16 then format(' granted by %I', r.grantor) else '' end;
    end if;
    if r.inherit_option then
      execute format('revoke inherit option for %I from client_sync granted by %I', r.granted, r.grantor);
    end if;
  end loop;

  -- No privilege of its own on a schema, table, column, sequence or this database: whatever was granted to
  -- client_sync directly. Its EXECUTE on functions is the migrations' (this file runs before them on every push).
  for r in
    select distinct format('revoke all on schema %I from client_sync', n.nspname) as stmt
      from pg_namespace n, aclexplode(n.nspacl) a
     where a.grantee = v_role
    union
    select format('revoke all on %s %s from client_sync',
                  case when c.relkind = 'S' then 'sequence' else 'table' end, c.oid::regclass)
      from pg_class c
     where exists (select 1 from aclexplode(c.relacl) a where a.grantee = v_role)
        or exists (select 1 from pg_attribute t, aclexplode(t.attacl) a
                    where t.attrelid = c.oid and a.grantee = v_role)
    union
    select format('revoke all on database %I from client_sync', d.datname)
      from pg_database d, aclexplode(d.datacl) a
     where d.datname = current_database() and a.grantee = v_role
  loop
    execute r.stmt;
  end loop;
end
$$;
