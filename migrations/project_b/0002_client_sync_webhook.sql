-- Project B: what the proactive sync needs. Versions that only move forward, and the database
-- webhook that tells project_b_webhook about every change of a client.

create schema if not exists private;
revoke all on schema private from public;

-- updated_at is the version the sync orders states by. clock_timestamp() is read after the row lock,
-- so a later writer of a row always gets a later version, even from an older transaction.
create or replace function private.advance_updated_at() returns trigger
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

create or replace trigger profiles_advance_updated_at
  before insert or update on public.profiles
  for each row execute function private.advance_updated_at();

-- The profile row carries the version of the whole client, email included: an email change in
-- auth.users advances its profile's updated_at too. Two rows with two clocks could not be ordered
-- (an email change committed after a rename, but stamped before it, would look old).
create or replace function private.email_change_advances_profile() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  update public.profiles set updated_at = updated_at where id = new.id;
  return null;
end;
$$;

create or replace trigger email_change_advances_profile
  after update of email on auth.users
  for each row when (old.email is distinct from new.email)
  execute function private.email_change_advances_profile();

-- The version the sync compares is the profile's alone (see above).
create or replace function public.client_source(p_id uuid)
returns table (
  id uuid,
  name text,
  email text,
  age integer,
  gender_identity text,
  avatar_url text,
  created_at timestamptz,
  updated_at timestamptz
)
language sql
stable
security definer
set search_path = ''
as $$
  select p.id, p.name, u.email, p.age, p.gender_identity, p.avatar_url, p.created_at, p.updated_at
    from public.profiles p
    join auth.users u on u.id = p.id
   where p.id = p_id
$$;

-- Installs (or points elsewhere) the database webhook: the URL and secret are arguments, never
-- written into a migration. Run it once per environment:
--   select private.install_client_sync_webhook('https://.../project_b_webhook', '<PROJECT_B_WEBHOOK_SECRET>');
create or replace function private.install_client_sync_webhook(
  p_url text,
  p_secret text,
  p_timeout_ms integer default 5000
) returns void
language plpgsql
set search_path = ''
as $$
declare
  v_headers text := jsonb_build_object(
    'Content-Type', 'application/json',
    'Authorization', 'Bearer ' || p_secret
  )::text;
begin
  if coalesce(p_url, '') = '' or coalesce(p_secret, '') = '' then
    raise exception 'the webhook URL and secret are required';
  end if;
  execute format(
    'create or replace trigger client_sync_webhook'
    ' after insert or update or delete on public.profiles'
    ' for each row execute function supabase_functions.http_request(%L, %L, %L, %L, %L)',
    p_url, 'POST', v_headers, '{}', p_timeout_ms::text
  );
  execute format(
    'create or replace trigger client_sync_webhook'
    ' after update of email on auth.users'
    ' for each row when (old.email is distinct from new.email)'
    ' execute function supabase_functions.http_request(%L, %L, %L, %L, %L)',
    p_url, 'POST', v_headers, '{}', p_timeout_ms::text
  );
end;
$$;

create or replace function private.uninstall_client_sync_webhook() returns void
language plpgsql
set search_path = ''
as $$
begin
  drop trigger if exists client_sync_webhook on public.profiles;
  drop trigger if exists client_sync_webhook on auth.users;
end;
$$;

revoke all on function private.install_client_sync_webhook(text, text, integer) from public;
revoke all on function private.uninstall_client_sync_webhook() from public;
