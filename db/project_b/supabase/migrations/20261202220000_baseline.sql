-- Baseline of Project B: the history of migrations/project_b/0001-0009 squashed into one migration, nothing
-- having been released. It is the schema files (supabase/schemas) as they stood then, in their order.
-- Migrations are forward-only from here: each later change is a new migration named for it, and the drift
-- test (tests/integration/test_schema_drift.py) proves that the migrations and the schema files agree.

-- ===== schemas/10_profiles.sql =====

-- Project B: client profiles; the email lives in auth.users. Project B's own table: created only where the
-- project does not have it yet, and likewise its policies.

create table if not exists public.profiles (
  id uuid primary key references auth.users (id) on delete cascade,
  name text,
  age integer,
  gender_identity text,
  avatar_url text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

alter table public.profiles enable row level security;

do $$
begin
  if not exists (select 1 from pg_policies where schemaname = 'public' and tablename = 'profiles'
                 and policyname = 'profiles_self_select') then
    create policy profiles_self_select on public.profiles for select to authenticated
      using (id = auth.uid());
  end if;
  if not exists (select 1 from pg_policies where schemaname = 'public' and tablename = 'profiles'
                 and policyname = 'profiles_self_update') then
    create policy profiles_self_update on public.profiles for update to authenticated
      using (id = auth.uid()) with check (id = auth.uid());
  end if;
end
$$;

-- The API roles lose TRUNCATE, TRIGGER and REFERENCES, which Supabase's default privileges grant: TRUNCATE
-- empties the table past row level security (and past the deletion records and the webhook, which are row
-- triggers), and a trigger a user attaches runs its code as whoever writes the table next.
revoke truncate, trigger, references on public.profiles from anon, authenticated;

-- ===== schemas/20_versions_and_deletions.sql =====

-- Project B: what the sync orders states by. Versions that only move forward, and the deletions of profiles,
-- kept after the row is gone.

create schema if not exists private;
revoke all on schema private from public;

-- updated_at is the version the sync orders states by. clock_timestamp() is read after the row lock,
-- so a later writer of a row always gets a later version, even from an older transaction.
create function private.advance_updated_at() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if tg_op = 'UPDATE' then
    new.updated_at := greatest(clock_timestamp(), old.updated_at + interval '1 microsecond');
  else
    new.updated_at := clock_timestamp();
  end if;
  return new;
end;
$$;

create trigger profiles_advance_updated_at
  before insert or update on public.profiles
  for each row execute function private.advance_updated_at();

-- The profile row carries the version of the whole client, email included: an email change in
-- auth.users advances its profile's updated_at too. Two rows with two clocks could not be ordered
-- (an email change committed after a rename, but stamped before it, would look old).
create function private.email_change_advances_profile() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  update public.profiles set updated_at = updated_at where id = new.id;
  return null;
end;
$$;

create trigger email_change_advances_profile
  after update of email on auth.users
  for each row when (old.email is distinct from new.email)
  execute function private.email_change_advances_profile();

-- When a profile was deleted, kept after the row is gone: the version of its absence. The sync archives
-- a client only when what Project A stored is older than the deletion. The time of a read that found no
-- profile is not enough: a profile inserted but not yet committed is stamped before that read, and its
-- own event may already have been applied.
create table private.profile_deletions (
  id uuid primary key,
  deleted_at timestamptz not null
);

create function private.record_profile_deletion() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into private.profile_deletions (id, deleted_at) values (old.id, clock_timestamp())
  on conflict (id) do update set deleted_at = excluded.deleted_at;
  return null;
end;
$$;

create trigger profiles_record_deletion
  after delete on public.profiles
  for each row execute function private.record_profile_deletion();

-- Reconcile reads the changes since a watermark in (version, id) order through these indexes, so that a few
-- changes among many clients are found without a scan.
create index if not exists profiles_updated_at_id_idx on public.profiles (updated_at, id);
create index if not exists profile_deletions_deleted_at_id_idx on private.profile_deletions (deleted_at, id);

-- ===== schemas/30_sync_surface.sql =====

-- Project B's side of the sync, as functions the service role calls with `select` or through PostgREST's
-- rpc (schema public, execute granted to service_role only, search_path pinned).

-- THE place that names what a client is made of: the profile columns listed here, and the auth user's
-- email. Everything but `name` reaches Project A as the client's source_attributes, so a column added to
-- profiles and listed here flows to Project A with no other change.
create table private.synced_profile_fields (
  name text primary key check (name not in ('id', 'email', 'updated_at'))
);

-- private.client_profile(profile, email) and private.client_profile_json (the same object as json) are
-- generated from that table whenever it changes: a static jsonb_build_object of the listed columns and the
-- email, a fraction of the cost of reading the table for every client of a page.
create function private.define_client_profile() returns trigger
language plpgsql
set search_path = ''
as $$
declare
  v_pairs text := (select coalesce(string_agg(format('%L, p.%I, ', f.name, f.name), '' order by f.name), '')
                     from private.synced_profile_fields f);
begin
  execute format(
    'create or replace function private.client_profile(p public.profiles, p_email text) returns jsonb'
    ' language sql immutable set search_path = '''' as $f$ select jsonb_build_object(%s''email'', p_email) $f$',
    v_pairs
  );
  execute format(
    'create or replace function private.client_profile_json(p public.profiles, p_email text) returns json'
    ' language sql immutable set search_path = '''' as $f$ select json_build_object(%s''email'', p_email) $f$',
    v_pairs
  );
  return null;
end;
$$;

revoke all on function private.define_client_profile() from public;

create trigger synced_profile_fields_define_client_profile
  after insert or update or delete or truncate on private.synced_profile_fields
  for each statement execute function private.define_client_profile();

insert into private.synced_profile_fields (name) values ('name'), ('age'), ('gender_identity'), ('avatar_url');

revoke all on function private.client_profile(public.profiles, text) from public;
revoke all on function private.client_profile_json(public.profiles, text) from public;

-- The current state of each id, in the order asked: the profile (private.client_profile) and its version,
-- or, for an id with no profile, its recorded deletion (if any). read_at is when Project B answered.
create function public.client_states(p_ids uuid[])
returns table (id uuid, profile jsonb, updated_at timestamptz, deleted_at timestamptz, read_at timestamptz)
language sql
stable
security definer
set search_path = ''
as $$
  select asked.id, case when p.id is not null then private.client_profile(p, u.email) end, p.updated_at,
         case when p.id is null then d.deleted_at end, statement_timestamp()
    from unnest(p_ids) with ordinality as asked (id, position)
    left join public.profiles p on p.id = asked.id
    left join auth.users u on u.id = p.id
    left join private.profile_deletions d on d.id = asked.id
   order by asked.position
$$;

-- A page of clients in id order, after `p_after` (null: from the start) and up to `p_until` (inclusive;
-- null: to the end), at most `p_limit` of them: what a backfill walks. One row: the clients as a JSON array
-- of {id, profile, updated_at} (passed to Project A as it is), the last id and how many. The page is built as
-- json (text put together in order) rather than jsonb (a binary tree built, sorted and printed): Project A
-- parses it once anyway. The bounds are index conditions (an `is null or` would scan from the first id on
-- every page); profile ids are random v4 UUIDs, so the nil UUID is never one.
create function public.client_page(p_after uuid, p_limit integer, p_until uuid default null)
returns table (clients json, last_id uuid, count integer)
language sql
stable
security definer
set search_path = ''
as $$
  with bounds as (
    select coalesce(p_after, '00000000-0000-0000-0000-000000000000'::uuid) as after_id,
           coalesce(p_until, 'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid) as until_id
  ), page as (
    select p.id, private.client_profile_json(p, u.email) as profile, p.updated_at
      from bounds b
      join public.profiles p on p.id > b.after_id and p.id <= b.until_id
      join auth.users u on u.id = p.id and u.id > b.after_id and u.id <= b.until_id
     order by p.id
     limit least(greatest(p_limit, 0), 5000)
  )
  select coalesce(json_agg(json_build_object('id', id, 'profile', profile, 'updated_at', updated_at)
                           order by id), '[]'::json),
         (array_agg(id order by id desc))[1], count(*)::integer
    from page
$$;

-- Up to `p_limit` changes after (p_since, p_since_id): clients written, as client_page's JSON, and clients
-- deleted (whose profile is still gone) as [{id, deleted_at}], then the (version, id) of the last change.
create function public.client_changes(p_since timestamptz, p_since_id uuid, p_limit integer)
returns table (clients jsonb, absences jsonb, last_version timestamptz, last_id uuid, count integer)
language sql
stable
security definer
set search_path = ''
as $$
  with bounded as (
    select least(greatest(p_limit, 0), 5000) as n,
           coalesce(p_since_id, '00000000-0000-0000-0000-000000000000'::uuid) as since_id
  ), changes as (
    (select p.id, private.client_profile(p, u.email) as profile, p.updated_at as version
       from public.profiles p
       join auth.users u on u.id = p.id
      where (p.updated_at, p.id) > (p_since, (select since_id from bounded))
      order by p.updated_at, p.id
      limit (select n from bounded))
    union all
    (select d.id, null, d.deleted_at
       from private.profile_deletions d
      where (d.deleted_at, d.id) > (p_since, (select since_id from bounded))
        and not exists (select 1 from public.profiles p where p.id = d.id)
      order by d.deleted_at, d.id
      limit (select n from bounded))
  ), page as (
    select * from changes order by version, id limit (select n from bounded)
  )
  select coalesce(jsonb_agg(jsonb_build_object('id', id, 'profile', profile, 'updated_at', version)
                            order by version, id) filter (where profile is not null), '[]'::jsonb),
         coalesce(jsonb_agg(jsonb_build_object('id', id, 'deleted_at', version)
                            order by version, id) filter (where profile is null), '[]'::jsonb),
         (array_agg(version order by version desc, id desc))[1],
         (array_agg(id order by version desc, id desc))[1],
         count(*)::integer
    from page
$$;

revoke all on function public.client_states(uuid[]) from public, anon, authenticated;
revoke all on function public.client_page(uuid, integer, uuid) from public, anon, authenticated;
revoke all on function public.client_changes(timestamptz, uuid, integer) from public, anon, authenticated;
grant execute on function public.client_states(uuid[]) to service_role;
grant execute on function public.client_page(uuid, integer, uuid) to service_role;
grant execute on function public.client_changes(timestamptz, uuid, integer) to service_role;

-- ===== schemas/40_webhook.sql =====

-- Project B: the database webhook that tells project_b_webhook about every change of a client. It sends ids
-- only, and its secret lives in Supabase Vault.
--
-- A dashboard-made webhook (supabase_functions.http_request) posts whole rows: on auth.users that is the
-- password hash, token hashes, phone and metadata, and pg_net keeps each request until it is sent. Its
-- headers, the bearer secret included, sit in the trigger's arguments, which every role reads in
-- pg_trigger. This trigger function posts {"type", "table", "schema", "record": {"id"}, "old_record":
-- {"id"}} and reads the secret from vault.decrypted_secrets; its arguments are the URL and the timeout.
create function private.client_sync_webhook() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_secret text;
begin
  select decrypted_secret into v_secret
    from vault.decrypted_secrets
   where name = 'client_sync_webhook_secret';
  if v_secret is null then
    raise warning 'client_sync_webhook: no secret named client_sync_webhook_secret in Vault; event not sent';
    return null;
  end if;
  perform net.http_post(
    url := tg_argv[0],
    body := jsonb_build_object(
      'type', tg_op,
      'table', tg_table_name,
      'schema', tg_table_schema,
      'record', case when tg_op <> 'DELETE' then jsonb_build_object('id', new.id) end,
      'old_record', case when tg_op <> 'INSERT' then jsonb_build_object('id', old.id) end
    ),
    headers := jsonb_build_object('Content-Type', 'application/json', 'Authorization', 'Bearer ' || v_secret),
    timeout_milliseconds := tg_argv[1]::integer
  );
  return null;
end;
$$;

revoke all on function private.client_sync_webhook() from public;

-- Installs (or points elsewhere) the database webhook and keeps its secret in Vault. Run it once per
-- environment, as an administrator:
--   select private.install_client_sync_webhook('https://.../webhooks/project-b', '<PROJECT_B_WEBHOOK_SECRET>');
create function private.install_client_sync_webhook(
  p_url text,
  p_secret text,
  p_timeout_ms integer default 5000
) returns void
language plpgsql
set search_path = ''
as $$
declare
  v_secret_id uuid;
begin
  if coalesce(p_url, '') = '' or coalesce(p_secret, '') = '' then
    raise exception 'the webhook URL and secret are required';
  end if;
  select id into v_secret_id from vault.secrets where name = 'client_sync_webhook_secret';
  if v_secret_id is null then
    perform vault.create_secret(p_secret, 'client_sync_webhook_secret', 'Bearer secret of project_b_webhook');
  else
    perform vault.update_secret(v_secret_id, p_secret);
  end if;
  execute format(
    'create or replace trigger client_sync_webhook'
    ' after insert or update or delete on public.profiles'
    ' for each row execute function private.client_sync_webhook(%L, %L)',
    p_url, p_timeout_ms::text
  );
  execute format(
    'create or replace trigger client_sync_webhook'
    ' after update of email on auth.users'
    ' for each row when (old.email is distinct from new.email)'
    ' execute function private.client_sync_webhook(%L, %L)',
    p_url, p_timeout_ms::text
  );
end;
$$;

revoke all on function private.install_client_sync_webhook(text, text, integer) from public;

create function private.uninstall_client_sync_webhook() returns void
language plpgsql
set search_path = ''
as $$
begin
  drop trigger if exists client_sync_webhook on public.profiles;
  drop trigger if exists client_sync_webhook on auth.users;
end;
$$;

revoke all on function private.uninstall_client_sync_webhook() from public;
