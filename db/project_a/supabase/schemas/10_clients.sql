-- Project A: therapists' clients. A client is either Project A's own (synced_from is null) or a copy of a
-- Project B client kept by the sync (synced_from = 'project_b').

-- Not exposed through PostgREST: helpers that need more than the caller's rights.
create schema if not exists private;
revoke all on schema private from public;
grant usage on schema private to authenticated, service_role;

create table public.clients (
  id uuid primary key default gen_random_uuid(),
  full_name text not null check (length(btrim(full_name)) > 0),
  email text,
  phone text,
  date_of_birth date,
  notes text,
  -- Null for clients the proactive sync created before any therapist booked them.
  therapist_id uuid,
  status text not null default 'active' check (status in ('active', 'archived')),
  synced_from text check (synced_from in ('project_b')),
  source_attributes jsonb not null default '{}'::jsonb,
  source_updated_at timestamptz,
  last_synced_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

-- Email uniqueness by kind: a synced client's email is unique among synced clients, as Project B's users' are;
-- a native client's only among its therapist's native clients, so that a therapist's write of their own client
-- answers the same whether or not another therapist's client has that email. A native client with a Project B
-- user's email becomes a link suggestion (60_link_suggestions.sql); the second index also finds natives by email.
create unique index clients_synced_email_unique on public.clients (lower(email))
  where email is not null and synced_from is not null;
create unique index clients_native_email_unique on public.clients (lower(email), therapist_id)
  where email is not null and synced_from is null;
-- Synced clients no therapist has booked stay out of it (row level security's `therapist_id = auth.uid()`
-- implies not null, so it still uses it), and a backfill of many of them writes no index entry for each.
create index clients_therapist_id_idx on public.clients (therapist_id) where therapist_id is not null;

alter table public.clients enable row level security;

-- Column privileges: users write what a therapist owns; id, status and the sync's columns are the sync's.
-- The API roles never get TRUNCATE (it empties a table past row level security), TRIGGER (a user's trigger
-- runs as whoever writes the table next) or REFERENCES, which Supabase's default privileges grant.
revoke all on public.clients from anon;
revoke insert, update on public.clients from authenticated;
grant insert (full_name, email, phone, date_of_birth, notes, therapist_id) on public.clients to authenticated;
grant update (full_name, email, phone, date_of_birth, notes) on public.clients to authenticated;
revoke truncate, trigger, references on public.clients from anon, authenticated;

-- Name and email of a synced client follow Project B; a therapist edits those of their native clients.
create function private.synced_fields_follow_project_b() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if current_user in ('authenticated', 'anon') and old.synced_from is not null
     and (new.full_name, new.email) is distinct from (old.full_name, old.email) then
    raise exception 'the name and email of a client synced from Project B are changed in Project B'
      using errcode = '42501';
  end if;
  return new;
end;
$$;

create trigger clients_synced_fields_follow_project_b
  before update of full_name, email on public.clients
  for each row execute function private.synced_fields_follow_project_b();
