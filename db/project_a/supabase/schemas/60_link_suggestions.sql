-- Project A: link suggestions. A Project B user whose email equals a native client's email is never merged
-- with it silently: the sync writes the user's copy as usual and suggests the link to the native client's
-- therapist only. One row per pair; a closed one (linked or rejected) never opens again; one closed as stale (the
-- emails no longer matched when the sync wrote the user) opens again when they match again. A suggestion is shown
-- while it is open, both clients are active, their emails still match and no other therapist has the Project B
-- user as a client (nobody learns of another therapist's client).
create table private.link_suggestions (
  client_id uuid not null references public.clients (id) on delete cascade,
  project_b_user_id uuid not null,
  since timestamptz not null default now(),
  closed_at timestamptz,
  closed_as text check (closed_as in ('linked', 'rejected', 'stale')),
  primary key (client_id, project_b_user_id),
  check ((closed_at is null) = (closed_as is null))
);
create index link_suggestions_open_idx on private.link_suggestions (since) where closed_at is null;

-- The suggestions a therapist may see and act on (list, link, reject): open, both clients active, their emails
-- still matching, and the Project B user nobody's client or the native client's therapist's.
create view private.visible_link_suggestions as
select l.client_id, l.project_b_user_id, l.since, n.therapist_id
  from private.link_suggestions l
  join public.clients n on n.id = l.client_id and n.synced_from is null and n.status = 'active'
  join public.clients b on b.id = l.project_b_user_id and b.synced_from is not null and b.status = 'active'
                        and (b.therapist_id is null or b.therapist_id = n.therapist_id)
 where l.closed_at is null and lower(n.email) = lower(b.email);

-- The open suggestions, oldest first: of the therapist of the verified claims `p_claims` (not_a_therapist
-- unless they are one), or all of them without claims (the service role). Ids and since only: nothing of the
-- Project B user beyond the match is shown before linking.
create function public.link_suggestions_for(p_claims jsonb default null, p_limit integer default 1000)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_uid uuid;
begin
  if p_claims is not null then
    perform set_config('request.jwt.claims', p_claims::text, true);
    v_uid := auth.uid();
    if v_uid is null or not private.is_therapist() then
      return jsonb_build_object('outcome', 'not_a_therapist');
    end if;
  end if;
  return jsonb_build_object('outcome', 'ok', 'suggestions', coalesce((
    select jsonb_agg(jsonb_build_object('client_id', s.client_id, 'project_b_user_id', s.project_b_user_id,
                                        'since', s.since) order by s.since, s.client_id, s.project_b_user_id)
      from (
        select v.client_id, v.project_b_user_id, v.since
          from private.visible_link_suggestions v
         where v_uid is null or v.therapist_id = v_uid
         order by v.since, v.client_id, v.project_b_user_id
         limit least(greatest(p_limit, 1), 5000)
      ) s
  ), '[]'::jsonb));
end;
$$;

comment on function public.link_suggestions_for(jsonb, integer) is
  'The open link suggestions (a native client and a Project B user with its email), oldest first, at most 5000: the therapist''s of the verified claims, or all without claims. Answers {outcome: ok, suggestions: [{client_id, project_b_user_id, since}]} or {outcome: not_a_therapist}.';

revoke all on function public.link_suggestions_for(jsonb, integer) from public, anon, authenticated;
grant execute on function public.link_suggestions_for(jsonb, integer) to service_role, client_sync;

-- Closes the suggestion of `p_client_id` (a native client) and `p_project_b_user_id` as rejected, for the
-- therapist of the verified claims `p_claims` (one they may see: private.visible_link_suggestions), or for the
-- service role without claims.
-- Answers {outcome: rejected} (again for one rejected already: the same request twice answers the same),
-- not_found (no such suggestion of the caller's, open or rejected; one answer whoever's the client is), or
-- not_a_therapist. A rejected pair never opens again.
create function public.reject_link_as(p_claims jsonb, p_client_id uuid, p_project_b_user_id uuid)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_uid uuid;
  v_closed_as text;
begin
  if p_claims is not null then
    perform set_config('request.jwt.claims', p_claims::text, true);
    v_uid := auth.uid();
    if v_uid is null or not private.is_therapist() then
      return jsonb_build_object('outcome', 'not_a_therapist');
    end if;
  end if;
  update private.link_suggestions l
     set closed_at = now(), closed_as = 'rejected'
   where l.client_id = p_client_id and l.project_b_user_id = p_project_b_user_id and l.closed_at is null
     and exists (select 1 from private.visible_link_suggestions v
                  where v.client_id = l.client_id and v.project_b_user_id = l.project_b_user_id
                    and (v_uid is null or v.therapist_id = v_uid))
  returning l.closed_as into v_closed_as;
  if not found then  -- rejected before by the caller: the same answer again
    select l.closed_as into v_closed_as
      from private.link_suggestions l join public.clients n on n.id = l.client_id
     where l.client_id = p_client_id and l.project_b_user_id = p_project_b_user_id and l.closed_as = 'rejected'
       and (v_uid is null or n.therapist_id = v_uid);
  end if;
  return jsonb_build_object('outcome', case when v_closed_as = 'rejected' then 'rejected' else 'not_found' end);
end;
$$;

comment on function public.reject_link_as(jsonb, uuid, uuid) is
  'Rejects a link suggestion for the therapist of the verified claims (their own native client), or for the service role without claims: it never opens again. Answers {outcome: rejected | not_found | not_a_therapist}.';

revoke all on function public.reject_link_as(jsonb, uuid, uuid) from public, anon, authenticated;
grant execute on function public.reject_link_as(jsonb, uuid, uuid) to service_role, client_sync;

-- The old ids of linked clients: a native client's id (old_id) now means the Project B user's (new_id), for the
-- therapist who linked it only.
create table private.client_aliases (
  old_id uuid primary key,
  new_id uuid not null references public.clients (id) on delete cascade,
  therapist_id uuid not null,
  linked_at timestamptz not null default now()
);
create index client_aliases_new_id_idx on private.client_aliases (new_id);

-- The client the calling therapist (auth.uid(), from the request's claims) means by an id: the one an old id of
-- theirs was linked into, else the id as given. It takes no therapist as an argument, so that nobody can ask it
-- about another therapist's aliases.
create function private.resolved_client_id(p_client_id uuid) returns uuid
language sql
stable
security definer
set search_path = ''
as $$
  select coalesce(
    (select a.new_id from private.client_aliases a where a.old_id = p_client_id and a.therapist_id = auth.uid()),
    p_client_id)
$$;

revoke all on function private.resolved_client_id(uuid) from public;
grant execute on function private.resolved_client_id(uuid) to authenticated, service_role;

-- Links a native client to the Project B user of an open suggestion, in one transaction, for the therapist of
-- the verified claims `p_claims` (their own client), or for the service role without claims: the user's copy
-- (`p_client`, Project B's state, written as sync writes it) becomes the therapist's client and takes the native
-- client's own fields (phone, date of birth, notes; the copy's where the native has none); its sessions and
-- aliases follow the new id; the old id stays an alias for its therapist; the native row is removed. Answers
-- {outcome: linked, client_id} or not_found (no such open suggestion of the caller's, the user gone from Project
-- B, or another therapist's client), email_not_confirmed (checked after not_found: nobody learns more), or
-- not_a_therapist.
create function public.link_client_as(
  p_claims jsonb, p_client_id uuid, p_project_b_user_id uuid, p_email_confirmed boolean, p_client jsonb
) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_uid uuid;
  v_native public.clients;
  v_written text;
begin
  if p_claims is not null then
    perform set_config('request.jwt.claims', p_claims::text, true);
    v_uid := auth.uid();
    if v_uid is null or not private.is_therapist() then
      return jsonb_build_object('outcome', 'not_a_therapist');
    end if;
  end if;
  perform 1 from private.visible_link_suggestions v
   where v.client_id = p_client_id and v.project_b_user_id = p_project_b_user_id
     and (v_uid is null or v.therapist_id = v_uid);
  if not found then
    return jsonb_build_object('outcome', 'not_found');
  end if;
  -- The user's row before the native one, as the upsert takes them (no deadlock with it), and then the
  -- suggestion; once all three are held, the suggestion must still be one the caller may act on (a reject, an
  -- archive or another therapist's booking may have come first).
  perform 1 from public.clients where id = p_project_b_user_id for update;
  select * into v_native from public.clients where id = p_client_id for update;
  perform 1 from private.link_suggestions
   where client_id = p_client_id and project_b_user_id = p_project_b_user_id for update;
  perform 1 from private.visible_link_suggestions v
   where v.client_id = p_client_id and v.project_b_user_id = p_project_b_user_id
     and (v_uid is null or v.therapist_id = v_uid);
  if not found or p_client is null then
    return jsonb_build_object('outcome', 'not_found');
  end if;
  if not p_email_confirmed then
    return jsonb_build_object('outcome', 'email_not_confirmed');
  end if;

  select u.outcome into v_written
    from public.upsert_synced_clients(
           jsonb_build_array(p_client || jsonb_build_object('id', p_project_b_user_id)), v_native.therapist_id) u;
  if v_written = 'conflict' then  -- Project B's email is held by another synced client now
    return jsonb_build_object('outcome', 'not_found');
  end if;
  update public.clients u
     set therapist_id = v_native.therapist_id,
         phone = coalesce(v_native.phone, u.phone),
         date_of_birth = coalesce(v_native.date_of_birth, u.date_of_birth),
         notes = coalesce(v_native.notes, u.notes),
         updated_at = now()
   where u.id = p_project_b_user_id and u.synced_from is not null and lower(u.email) = lower(v_native.email);
  if not found then  -- the copy could not be written (another synced client holds the email), or Project B's
                     -- email no longer matches the native client's
    return jsonb_build_object('outcome', 'not_found');
  end if;
  update public.sessions set client_id = p_project_b_user_id where client_id = p_client_id;
  update private.client_aliases set new_id = p_project_b_user_id where new_id = p_client_id;
  insert into private.client_aliases (old_id, new_id, therapist_id)
  values (p_client_id, p_project_b_user_id, v_native.therapist_id);
  delete from public.clients where id = p_client_id;  -- its suggestions go with it
  return jsonb_build_object('outcome', 'linked', 'client_id', p_project_b_user_id);
end;
$$;

comment on function public.link_client_as(jsonb, uuid, uuid, boolean, jsonb) is
  'Links a native client to the Project B user of an open suggestion, for the therapist of the verified claims (or the service role without claims): sessions follow the new id, the old id stays an alias for its therapist. Answers {outcome: linked, client_id} | not_found | email_not_confirmed | not_a_therapist.';

revoke all on function public.link_client_as(jsonb, uuid, uuid, boolean, jsonb) from public, anon, authenticated;
grant execute on function public.link_client_as(jsonb, uuid, uuid, boolean, jsonb) to service_role, client_sync;
