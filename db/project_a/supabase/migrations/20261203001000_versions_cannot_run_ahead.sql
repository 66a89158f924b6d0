-- Versions from Project B cannot run ahead of time in Project A: the watermark is never kept past now plus
-- the skew, and the versions and watermark a bad Project B version already put here are brought back.

-- Versions as Project A keeps them: a finite version no later than the time of writing (now()) plus the skew
-- is kept as it is; an infinite or later one becomes now(). The skew is client_sync.max_version_skew_seconds,
-- which the functions set on their connections (MAX_VERSION_SKEW_SECONDS); 60 s when unset, at most an hour.
-- Project B answers bad versions as the time of reading already; this guards what is stored whoever calls.
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
grant execute on function private.version_limit(timestamptz) to service_role;
grant execute on function private.kept_version(timestamptz, timestamptz) to service_role;

-- Moves a watermark forward, never back (a page read again with the overlap is older), and never past now plus
-- the skew (private.kept_version): a version run ahead would make reconcile miss every later change.
create or replace function private.advance_watermark(p_name text, p_watermark timestamptz, p_watermark_id uuid) returns void
language sql
security definer
set search_path = ''
as $$
  insert into private.sync_state as s (name, watermark, watermark_id)
  select p_name, private.kept_version(p_watermark, now()), p_watermark_id
   where p_watermark > '-infinity'
  on conflict (name) do update set watermark = excluded.watermark, watermark_id = excluded.watermark_id,
                                   updated_at = now()
  where (s.watermark, s.watermark_id) < (excluded.watermark, excluded.watermark_id)
$$;

-- A stored version run ahead is forgotten (null: the next state Project B gives is taken, as for a client never
-- versioned), so the client follows Project B again.
update public.clients set source_updated_at = null
 where synced_from = 'project_b' and private.kept_version(source_updated_at, now()) is distinct from source_updated_at;

-- A watermark run ahead goes back to when it was moved there: the page that moved it had read every change
-- stamped before then (in version order, the bad one last), and reconcile's overlap covers those committed late.
update private.sync_state set watermark = least(updated_at, now()), updated_at = now()
 where private.kept_version(watermark, now()) is distinct from watermark;
