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
