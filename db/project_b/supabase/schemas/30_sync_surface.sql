-- Project B's side of the sync, as functions the functions' login (client_sync, which has no privilege on any
-- table) calls with `select`, and the service role through PostgREST's rpc: schema public, execute granted to
-- those two only, security definers owned by the tables' owner, search_path pinned.

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

-- One client of client_page's JSON: {id, profile, updated_at}, with version_clamped: true
-- when the version as stored (p_stored) was bad and is answered as read (p_updated_at).
create function private.client_state_json(p_id uuid, p_profile json, p_updated_at timestamptz,
                                          p_stored timestamptz)
returns json
language sql
immutable
as $$
  select case when p_updated_at is distinct from p_stored
              then json_build_object('id', p_id, 'profile', p_profile, 'updated_at', p_updated_at,
                                     'version_clamped', true)
              else json_build_object('id', p_id, 'profile', p_profile, 'updated_at', p_updated_at) end
$$;

revoke all on function private.client_state_json(uuid, json, timestamptz, timestamptz) from public;

-- The current state of each id, in the order asked: the profile (private.client_profile) and its version, as
-- read (private.kept_version; version_clamped when it was bad), or, for an id with no profile, its recorded
-- deletion (if any). read_at is when Project B answered.
create function public.client_states(p_ids uuid[])
returns table (id uuid, profile jsonb, updated_at timestamptz, deleted_at timestamptz, read_at timestamptz,
               version_clamped boolean)
language sql
stable
security definer
set search_path = ''
as $$
  select asked.id, case when p.id is not null then private.client_profile(p, u.email) end,
         private.kept_version(p.updated_at, statement_timestamp()),
         case when p.id is null then d.deleted_at end, statement_timestamp(),
         private.kept_version(p.updated_at, statement_timestamp()) is distinct from p.updated_at
    from unnest(p_ids) with ordinality as asked (id, position)
    left join public.profiles p on p.id = asked.id
    left join auth.users u on u.id = p.id
    left join private.profile_deletions d on d.id = asked.id
   order by asked.position
$$;

comment on function public.client_states(uuid[]) is
  'The current state of each id asked, in that order: its profile and version (a version run ahead read as read_at, and version_clamped), or its recorded deletion; read_at is when Project B answered.';

-- A page of clients in id order, after `p_after` (null: from the start) and up to `p_until` (inclusive;
-- null: to the end), at most `p_limit` of them: what a backfill walks. One row: the clients as a JSON array
-- of {id, profile, updated_at} (passed to Project A as it is), the last id and how many. The page is built as
-- json (text put together in order) rather than jsonb (a binary tree built, sorted and printed): Project A
-- parses it once anyway. The bounds are index conditions (an `is null or` would scan from the first id on
-- every page); profile ids are random v4 UUIDs, so the nil UUID is never one. Versions are read as
-- client_states reads them.
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
    select p.id, private.client_profile_json(p, u.email) as profile, p.updated_at as version,
           private.kept_version(p.updated_at, statement_timestamp()) as updated_at
      from bounds b
      join public.profiles p on p.id > b.after_id and p.id <= b.until_id
      join auth.users u on u.id = p.id and u.id > b.after_id and u.id <= b.until_id
     order by p.id
     limit least(greatest(p_limit, 0), 5000)
  )
  select coalesce(json_agg(private.client_state_json(id, profile, updated_at, version) order by id), '[]'::json),
         (array_agg(id order by id desc))[1], count(*)::integer
    from page
$$;

comment on function public.client_page(uuid, integer, uuid) is
  'A page of clients in id order after p_after and up to p_until, at most p_limit (5000): their states as one JSON array, the last id and the count. What a backfill walks.';

-- Up to `p_limit` changes after (p_since, p_since_id): clients written, as client_page's JSON, and clients
-- deleted (whose profile is still gone) as [{id, deleted_at}], then the (version, id) of the last change. The
-- changes are found and ordered by their versions as stored (the index), and answered as client_states reads
-- them: the last version too, so a version run ahead never becomes reconcile's watermark.
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
    select c.*, private.kept_version(c.version, statement_timestamp()) as kept
      from changes c order by c.version, c.id limit (select n from bounded)
  )
  select coalesce(jsonb_agg(case when kept is distinct from version  -- client_state_json's shape, as jsonb
                              then jsonb_build_object('id', id, 'profile', profile, 'updated_at', kept,
                                                      'version_clamped', true)
                              else jsonb_build_object('id', id, 'profile', profile, 'updated_at', kept) end
                            order by version, id) filter (where profile is not null), '[]'::jsonb),
         coalesce(jsonb_agg(jsonb_build_object('id', id, 'deleted_at', version)
                            order by version, id) filter (where profile is null), '[]'::jsonb),
         (array_agg(kept order by version desc, id desc))[1],
         (array_agg(id order by version desc, id desc))[1],
         count(*)::integer
    from page
$$;

comment on function public.client_changes(timestamptz, uuid, integer) is
  'Up to p_limit changes after (p_since, p_since_id) in (version, id) order: the clients written, the clients deleted, and the (version, id) of the last change. What reconcile reads.';

revoke all on function public.client_states(uuid[]) from public, anon, authenticated;
revoke all on function public.client_page(uuid, integer, uuid) from public, anon, authenticated;
revoke all on function public.client_changes(timestamptz, uuid, integer) from public, anon, authenticated;
grant execute on function public.client_states(uuid[]) to service_role, client_sync;
grant execute on function public.client_page(uuid, integer, uuid) to service_role, client_sync;
grant execute on function public.client_changes(timestamptz, uuid, integer) to service_role, client_sync;

-- Whether the user's email is `p_email` and confirmed (auth.users.email_confirmed_at, GoTrue's column): linking a
-- native client of Project A to the user needs it, so that a stranger who signs up with a client's email is not
-- linked to that client's record; the email is the one the link matched, so a confirmation of another email (or
-- of an email changed since without one) does not count. False for an unknown id.
create function public.email_confirmed(p_user_id uuid, p_email text) returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select coalesce((select u.email_confirmed_at is not null and lower(u.email) = lower(p_email)
                     from auth.users u where u.id = p_user_id), false)
$$;

comment on function public.email_confirmed(uuid, text) is
  'Whether the Project B user''s email is p_email and confirmed (auth.users.email_confirmed_at is set); false for an unknown id.';

revoke all on function public.email_confirmed(uuid, text) from public, anon, authenticated;
grant execute on function public.email_confirmed(uuid, text) to service_role, client_sync;
