-- email_confirmed checks the email the link matched, not only that some email of the user was confirmed.

drop function public.email_confirmed(uuid);
create function public.email_confirmed(p_user_id uuid, p_email text) returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select coalesce((select u.email_confirmed_at is not null and lower(u.email) = lower(p_email)
                     from auth.users u where u.id = p_user_id), false)
$$;

comment on function public.email_confirmed(uuid, text) is
  'Whether the Project B user''s email is p_email and confirmed (auth.users.email_confirmed_at is set); false for an unknown id.';

revoke all on function public.email_confirmed(uuid, text) from public, anon, authenticated;
grant execute on function public.email_confirmed(uuid, text) to service_role, client_sync;
