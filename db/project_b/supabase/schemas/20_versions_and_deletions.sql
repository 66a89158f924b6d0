-- Project B: what the sync orders states by. Versions that only move forward, and the deletions of profiles,
-- kept after the row is gone.

create schema if not exists private;
revoke all on schema private from public;

-- updated_at is the version the sync orders states by. clock_timestamp() is read after the row lock,
-- so a later writer of a row always gets a later version, even from an older transaction. An old version that
-- is infinite or more than a minute ahead (written before this trigger existed) is not carried on: the row
-- gets clock_timestamp().
create function private.advance_updated_at() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if tg_op = 'UPDATE' and isfinite(old.updated_at)
     and old.updated_at <= clock_timestamp() + interval '1 minute' then
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

-- Versions as the sync reads them. A version is kept as it is when it is finite and no later than the time of
-- reading plus the skew; otherwise (infinite, or run ahead: written before advance_updated_at guarded it) it
-- is read as the time of reading. The skew is client_sync.max_version_skew_seconds, which the functions set on
-- their connections (MAX_VERSION_SKEW_SECONDS); 60 s when unset, at most an hour. Neither has `set
-- search_path`, so that they are inlined into the queries that read versions (they name no table).
create function private.version_limit(p_read_at timestamptz) returns timestamptz
language sql
stable
as $$
  select p_read_at + make_interval(secs => least(greatest(coalesce(
    nullif(current_setting('client_sync.max_version_skew_seconds', true), '')::double precision, 60), 0), 3600))
$$;

create function private.kept_version(p_version timestamptz, p_read_at timestamptz) returns timestamptz
language sql
stable
as $$
  select case when p_version is null or (isfinite(p_version) and p_version <= private.version_limit(p_read_at))
              then p_version else p_read_at end
$$;

revoke all on function private.version_limit(timestamptz) from public;
revoke all on function private.kept_version(timestamptz, timestamptz) from public;
