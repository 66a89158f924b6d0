-- Invites from Project A: what an invite meets in Project B, and the invited user's profile.

-- Project B: invites from Project A. Project A's functions create the invited user through the Auth admin API
-- (never with SQL), under the client's id, with app_metadata {"invited_from": "project_a"} (which only the
-- service role can write); these read what an invite meets here and create the user's profile.

-- What an invite of Project A's client `p_id` with the email `p_email` meets in Project B: `user` is absent (no
-- user has the id), invited (the user an invite from Project A created) or other (a user of Project B's own has
-- the id); `email_user_id` is another user with that email (compared as GoTrue compares, lower case), or null;
-- `user_email_confirmed` whether the invited user has confirmed their email (nothing is left to invite them to).
create function public.invite_target(p_id uuid, p_email text) returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select jsonb_build_object(
    'user', coalesce((select case when u.raw_app_meta_data ->> 'invited_from' = 'project_a' then 'invited'
                                  else 'other' end
                        from auth.users u where u.id = p_id), 'absent'),
    'user_email_confirmed', coalesce((select u.email_confirmed_at is not null from auth.users u where u.id = p_id),
                                     false),
    'email_user_id', (select u.id from auth.users u
                       where lower(u.email) = lower(p_email) and u.id <> p_id
                       order by u.created_at, u.id limit 1))
$$;

comment on function public.invite_target(uuid, text) is
  'What an invite from Project A meets: {user: absent | invited | other (the user with the id), user_email_confirmed, email_user_id: another user with the email, or null}.';

revoke all on function public.invite_target(uuid, text) from public, anon, authenticated;
grant execute on function public.invite_target(uuid, text) to service_role, client_sync;

-- The profile of the user an invite from Project A created (only such a user), with the client's name and
-- nothing else: Project A's other fields never reach Project B. Created once: a profile already there is kept,
-- and given the name only when it has none (a project whose trigger makes a profile for every new user).
-- Answers the user's state as client_states does (no profile: not such a user).
create function public.create_invited_profile(p_id uuid, p_name text)
returns table (id uuid, profile jsonb, updated_at timestamptz, deleted_at timestamptz, read_at timestamptz,
               version_clamped boolean)
language plpgsql
security definer
set search_path = ''
as $$
#variable_conflict use_column
begin
  insert into public.profiles as p (id, name)
  select u.id, p_name from auth.users u
   where u.id = p_id and u.raw_app_meta_data ->> 'invited_from' = 'project_a'
  on conflict (id) do update set name = excluded.name
   where nullif(btrim(p.name), '') is null;
  return query select * from public.client_states(array[p_id]);
end;
$$;

comment on function public.create_invited_profile(uuid, text) is
  'Creates the profile (the name only) of a user Project A invited, once (or names one that has no name), and answers the user''s state as client_states does.';

revoke all on function public.create_invited_profile(uuid, text) from public, anon, authenticated;
grant execute on function public.create_invited_profile(uuid, text) to service_role, client_sync;
