-- What hosted Supabase already provides and a bare Postgres lacks. Local only: `ops.migrate` applies
-- devtools/platform/*.sql to local and test databases (local=True), before every migration run, never to a
-- Supabase project. Every statement here may run again.

do $$
declare
  r record;
begin
  for r in select * from (values ('anon', 'nologin noinherit'), ('authenticated', 'nologin noinherit'),
                                 ('service_role', 'nologin noinherit bypassrls')) as api (name, options)
  loop
    if not exists (select 1 from pg_roles where rolname = r.name) then
      begin
        execute format('create role %I %s', r.name, r.options);
      exception when duplicate_object or unique_violation then
        null;  -- another database of this server created it at the same moment
      end;
    end if;
  end loop;
end
$$;

-- PostgREST's login (docs.postgrest.org, "Authentication"): it connects as `authenticator` and takes the role of
-- each request's JWT with SET LOCAL ROLE, so it is a member of the API roles and has no privilege of its own.
-- devtools/postgrest.py logs in as it.
do $$
declare
  r record;
begin
  if not exists (select 1 from pg_roles where rolname = 'authenticator') then
    begin
      create role authenticator login noinherit nosuperuser nocreatedb nocreaterole nobypassrls;
    exception when duplicate_object or unique_violation then
      null;  -- another database of this server created it at the same moment
    end;
  end if;
  for r in select unnest(array['anon', 'authenticated', 'service_role']) as name loop
    if not exists (select 1 from pg_auth_members m
                    where m.roleid = r.name::regrole and m.member = 'authenticator'::regrole) then
      begin
        execute format('grant %I to authenticator', r.name);
      exception when unique_violation then
        null;  -- granted at the same moment from another database
      end;
    end if;
  end loop;
end
$$;

create schema if not exists auth;
grant usage on schema auth to anon, authenticated, service_role;

create table if not exists auth.users (
  id uuid primary key default gen_random_uuid(),
  email text,
  email_confirmed_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
-- GoTrue's columns this project reads, on a local database made before they were here.
alter table auth.users add column if not exists email_confirmed_at timestamptz;
alter table auth.users add column if not exists raw_app_meta_data jsonb;
grant select on auth.users to service_role;
-- And the ones devtools/auth_admin.py (the Auth stand-in: admin user create, invite) writes, with GoTrue's names
-- and types (supabase/auth migrations/00_init_auth_schema.up.sql).
alter table auth.users add column if not exists aud varchar(255);
alter table auth.users add column if not exists role varchar(255);
alter table auth.users add column if not exists encrypted_password varchar(255);
alter table auth.users add column if not exists invited_at timestamptz;
alter table auth.users add column if not exists confirmation_token varchar(255);
alter table auth.users add column if not exists confirmation_sent_at timestamptz;
alter table auth.users add column if not exists raw_user_meta_data jsonb;
alter table auth.users add column if not exists last_sign_in_at timestamptz;

-- GoTrue's login (the Supabase image's supabase_auth_admin, which owns the auth schema there): here it may read,
-- insert and update auth.users and nothing else. devtools/auth_admin.py logs in as it.
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'supabase_auth_admin') then
    begin
      create role supabase_auth_admin login noinherit nosuperuser nocreatedb nocreaterole nobypassrls;
    exception when duplicate_object or unique_violation then
      null;  -- another database of this server created it at the same moment
    end;
  end if;
end
$$;
grant usage on schema auth to supabase_auth_admin;
grant select, insert, update on auth.users to supabase_auth_admin;

-- auth.uid() and auth.jwt() read the claims PostgREST puts in the transaction.
create or replace function auth.jwt() returns jsonb
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')
  )::jsonb
$$;

create or replace function auth.uid() returns uuid
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$$;

create or replace function auth.role() returns text
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
  )::text
$$;

grant execute on function auth.jwt(), auth.uid(), auth.role() to anon, authenticated, service_role;

-- Supabase grants the API roles on public; row level security does the rest.
grant usage on schema public to anon, authenticated, service_role;
alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to anon, authenticated, service_role;
