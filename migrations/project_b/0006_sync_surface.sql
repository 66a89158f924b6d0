-- Project B's side of the sync, as functions the service role calls with `select` or through PostgREST's
-- rpc (schema public, execute granted to service_role only, search_path pinned).

-- THE place that names what a client is made of: the profile columns listed here, and the auth user's
-- email. Everything but `name` reaches Project A as the client's source_attributes, so a column added to
-- profiles and listed here flows to Project A with no other change.
create table private.synced_profile_fields (
  name text primary key check (name not in ('id', 'email', 'updated_at'))
);
insert into private.synced_profile_fields (name) values ('name'), ('age'), ('gender_identity'), ('avatar_url');

create or replace function private.client_profile(p public.profiles, p_email text) returns jsonb
language sql
stable
set search_path = ''
as $$
  select coalesce(jsonb_object_agg(f.name, row.fields -> f.name), '{}'::jsonb) || jsonb_build_object('email', p_email)
    from (select to_jsonb(p) as fields) as row, private.synced_profile_fields f
$$;

revoke all on function private.client_profile(public.profiles, text) from public;

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
-- of {id, profile, updated_at} (passed to Project A as it is), the last id and how many.
create function public.client_page(p_after uuid, p_limit integer, p_until uuid default null)
returns table (clients jsonb, last_id uuid, count integer)
language sql
stable
security definer
set search_path = ''
as $$
  with page as (
    select p.id, private.client_profile(p, u.email) as profile, p.updated_at
      from public.profiles p
      join auth.users u on u.id = p.id
     where (p_after is null or p.id > p_after) and (p_until is null or p.id <= p_until)
     order by p.id
     limit least(greatest(p_limit, 0), 5000)
  )
  select coalesce(jsonb_agg(jsonb_build_object('id', id, 'profile', profile, 'updated_at', updated_at)
                            order by id), '[]'::jsonb),
         (array_agg(id order by id desc))[1], count(*)::integer
    from page
$$;

revoke all on function public.client_states(uuid[]) from public, anon, authenticated;
revoke all on function public.client_page(uuid, integer, uuid) from public, anon, authenticated;
grant execute on function public.client_states(uuid[]) to service_role;
grant execute on function public.client_page(uuid, integer, uuid) to service_role;

-- Replaced by client_states.
drop function public.client_source(uuid);
drop function public.profile_deleted_at(uuid);
