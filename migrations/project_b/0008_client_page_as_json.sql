-- Project B: a backfill page is built as json (text put together in order) rather than jsonb (a binary tree
-- built, sorted and printed): Project A parses the page once anyway, and this halves what a page costs here.

-- define_client_profile now also generates private.client_profile_json, the same object as json, from the same
-- private.synced_profile_fields.
create or replace function private.define_client_profile() returns trigger
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

-- A statement trigger fires even when no row changes: this generates client_profile_json.
update private.synced_profile_fields set name = name where false;

revoke all on function private.client_profile_json(public.profiles, text) from public;

-- client_page as 0006 defines it, its clients as json.
drop function public.client_page(uuid, integer, uuid);

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

revoke all on function public.client_page(uuid, integer, uuid) from public, anon, authenticated;
grant execute on function public.client_page(uuid, integer, uuid) to service_role;
