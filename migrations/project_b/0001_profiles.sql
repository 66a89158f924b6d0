-- Project B: client profiles; the email lives in auth.users.

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

-- Project B's own policies; created only where the project does not have them yet.
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

-- Profile and email in one query, for the sync. The service role only.
-- updated_at is the later of the two rows, so an email change counts as a newer state.
create function public.client_source(p_id uuid)
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
  select p.id, p.name, u.email, p.age, p.gender_identity, p.avatar_url, p.created_at,
         greatest(p.updated_at, u.updated_at)
    from public.profiles p
    join auth.users u on u.id = p.id
   where p.id = p_id
$$;

revoke all on function public.client_source(uuid) from public, anon, authenticated;
grant execute on function public.client_source(uuid) to service_role;
