-- Whether a user's email is confirmed, for sync_client's link mode in Project A.

-- Whether the user's email is confirmed (auth.users.email_confirmed_at, GoTrue's column): linking a native
-- client of Project A to the user needs it, so that a stranger who signs up with a client's email is not linked
-- to that client's record. False for an unknown id.
create function public.email_confirmed(p_user_id uuid) returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select coalesce((select u.email_confirmed_at is not null from auth.users u where u.id = p_user_id), false)
$$;

comment on function public.email_confirmed(uuid) is
  'Whether the Project B user''s email is confirmed (auth.users.email_confirmed_at is set); false for an unknown id.';

revoke all on function public.email_confirmed(uuid) from public, anon, authenticated;
grant execute on function public.email_confirmed(uuid) to service_role, client_sync;
