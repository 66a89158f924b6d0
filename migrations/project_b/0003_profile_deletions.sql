-- When a profile was deleted, kept after the row is gone: the version of its absence. The sync archives
-- a client only when what Project A stored is older than the deletion. The time of a read that found no
-- profile is not enough: a profile inserted but not yet committed is stamped before that read, and its
-- own event may already have been applied.
create table if not exists private.profile_deletions (
  id uuid primary key,
  deleted_at timestamptz not null
);

create or replace function private.record_profile_deletion() returns trigger
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

create or replace trigger profiles_record_deletion
  after delete on public.profiles
  for each row execute function private.record_profile_deletion();

-- The deletion time of a profile, or null when none is recorded. The service role only.
create or replace function public.profile_deleted_at(p_id uuid) returns timestamptz
language sql
stable
security definer
set search_path = ''
as $$
  select deleted_at from private.profile_deletions where id = p_id
$$;

revoke all on function public.profile_deleted_at(uuid) from public, anon, authenticated;
grant execute on function public.profile_deleted_at(uuid) to service_role;
