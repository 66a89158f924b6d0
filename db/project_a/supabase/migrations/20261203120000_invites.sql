-- Invites: a native client joins Project B under the same UUID (private.client_invites and the functions that
-- check and record an invite); upsert_synced_clients writes a native client once it has an invite.

-- Project A: invites. A therapist's own (native) client joins the clients' app, Project B, under the same UUID:
-- the functions check the client here, create the Project B user (Auth admin API) and profile and send the
-- invitation, and then record the invite here, which makes the client synced from Project B (sync writes a native
-- client only when it has an invite). A client invited once stays invited: asked again, the invite answers
-- already_invited. Ids only: the email and name travel in the call, never into this table.
create table private.client_invites (
  client_id uuid primary key references public.clients (id) on delete cascade,
  invited_by uuid,  -- the therapist, or null for the service role
  invited_at timestamptz not null default now()
);

-- Why `p_client` (a row of public.clients, all null for none) cannot be invited by the therapist `p_uid` (null:
-- the service role, any client), or null when it can: not_found (absent, or not the therapist's: one answer),
-- already_invited, not_a_native_client, archived, client_has_no_email.
create function private.invite_refusal(p_client public.clients, p_uid uuid) returns text
language sql
stable
set search_path = ''
as $$
  select case
    when p_client.id is null or (p_uid is not null and p_client.therapist_id is distinct from p_uid) then 'not_found'
    when p_client.synced_from is not null then
      case when exists (select 1 from private.client_invites i where i.client_id = p_client.id)
           then 'already_invited' else 'not_a_native_client' end
    when p_client.status <> 'active' then 'archived'
    when nullif(btrim(p_client.email), '') is null then 'client_has_no_email'
  end
$$;

revoke all on function private.invite_refusal(public.clients, uuid) from public;

-- The client an invite of `p_client_id` (an old id of a linked client: the one it means) acts on, for the
-- therapist of the verified claims `p_claims` (their own client), or the service role without claims. Reads
-- only. Answers {outcome: ready, client_id, email, full_name} (what the Project B user and profile get) or
-- {outcome: <private.invite_refusal>, client_id}, email_in_use with the synced client that holds the email (its
-- copy would keep the invited user from being written here: refused before Project B is touched), or
-- not_a_therapist.
create function public.client_to_invite_as(p_claims jsonb, p_client_id uuid)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_uid uuid;
  v_client public.clients;
  v_refusal text;
  v_holder uuid;
begin
  if p_claims is not null then
    perform set_config('request.jwt.claims', p_claims::text, true);
    v_uid := auth.uid();
    if v_uid is null or not private.is_therapist() then
      return jsonb_build_object('outcome', 'not_a_therapist');
    end if;
  end if;
  select * into v_client from public.clients where id = private.resolved_client_id(p_client_id);
  v_refusal := private.invite_refusal(v_client, v_uid);
  if v_refusal is not null then
    return jsonb_build_object('outcome', v_refusal, 'client_id', coalesce(v_client.id, p_client_id));
  end if;
  select s.id into v_holder from public.clients s
   where s.email is not null and s.synced_from is not null and lower(s.email) = lower(btrim(v_client.email));
  if v_holder is not null then
    return jsonb_build_object('outcome', 'email_in_use', 'client_id', v_client.id, 'holder_id', v_holder);
  end if;
  return jsonb_build_object('outcome', 'ready', 'client_id', v_client.id, 'email', btrim(v_client.email),
                            'full_name', v_client.full_name);
end;
$$;

comment on function public.client_to_invite_as(jsonb, uuid) is
  'The client an invite acts on, for the therapist of the verified claims (or the service role without claims): {outcome: ready, client_id, email, full_name}, or {outcome: not_found | already_invited | not_a_native_client | archived | client_has_no_email | not_a_therapist}.';

revoke all on function public.client_to_invite_as(jsonb, uuid) from public, anon, authenticated;
grant execute on function public.client_to_invite_as(jsonb, uuid) to service_role, client_sync;

-- Records the invite of `p_client_id` once Project B has the user, its profile and the invitation, for the
-- therapist of the verified claims `p_claims` (their own client), or the service role without claims: in one
-- transaction, with the client locked and checked again, the invite is kept and Project B's state of the user
-- (`p_client`, {profile, updated_at}) is written as sync writes it, which makes the client synced from Project B
-- (Project B owns its name and email from then on; Project A keeps its own fields and sessions). Answers
-- {outcome: invited, client_id}, {outcome: <private.invite_refusal>, client_id} (already_invited when another
-- call recorded it first), email_in_use (another synced client has the email: nothing is kept), or
-- not_a_therapist.
create function public.record_invite_as(p_claims jsonb, p_client_id uuid, p_client jsonb)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_uid uuid;
  v_client public.clients;
  v_refusal text;
  v_written text;
begin
  if p_claims is not null then
    perform set_config('request.jwt.claims', p_claims::text, true);
    v_uid := auth.uid();
    if v_uid is null or not private.is_therapist() then
      return jsonb_build_object('outcome', 'not_a_therapist');
    end if;
  end if;
  select * into v_client from public.clients where id = p_client_id for update;
  v_refusal := private.invite_refusal(v_client, v_uid);
  if v_refusal is not null then
    return jsonb_build_object('outcome', v_refusal, 'client_id', p_client_id);
  end if;
  if p_client is null then
    return jsonb_build_object('outcome', 'not_found', 'client_id', p_client_id);
  end if;
  begin  -- a subtransaction: when the write is refused, nothing of it is kept (the conflict it records included)
    insert into private.client_invites (client_id, invited_by) values (p_client_id, v_uid);
    select u.outcome into v_written
      from public.upsert_synced_clients(jsonb_build_array(p_client || jsonb_build_object('id', p_client_id)),
                                        v_client.therapist_id) u;
    if v_written = 'conflict' then
      raise exception 'another synced client has the email' using errcode = 'IV409';
    end if;
  exception when sqlstate 'IV409' then
    return jsonb_build_object('outcome', 'email_in_use', 'client_id', p_client_id);
  end;
  return jsonb_build_object('outcome', 'invited', 'client_id', p_client_id);
end;
$$;

comment on function public.record_invite_as(jsonb, uuid, jsonb) is
  'Records the invite of a native client once Project B has its user, profile and invitation, for the therapist of the verified claims (or the service role without claims), and writes Project B''s state of the user, which makes the client synced. Answers {outcome: invited | already_invited | not_found | not_a_native_client | archived | client_has_no_email | email_in_use | not_a_therapist, client_id}.';

revoke all on function public.record_invite_as(jsonb, uuid, jsonb) from public, anon, authenticated;
grant execute on function public.record_invite_as(jsonb, uuid, jsonb) to service_role, client_sync;

create or replace function public.upsert_synced_clients(p_clients jsonb, p_therapist_id uuid default null)
returns table (client_id uuid, outcome text, conflict text, other_client_id uuid, notices text[])
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_ids uuid[];
  v_outcomes text[];
  v_kinds text[];
  v_others uuid[];
  v_notices jsonb[];
  v_native uuid[] := '{}';
begin
  with incoming as (
    select distinct on (s.id) s.id, m.*
      from jsonb_to_recordset(p_clients) as s (id uuid, profile jsonb, updated_at timestamptz, version_clamped boolean)
      cross join lateral private.synced_columns(s.profile, s.updated_at, coalesce(s.version_clamped, false)) as m
     order by s.id, s.updated_at desc nulls last
  ), ranked as (  -- two incoming clients with one email: the first in id order takes it
    select i.*, case when i.email is not null then
             nullif(first_value(i.id) over (partition by lower(i.email) order by i.id), i.id) end as earlier
      from incoming i
  ), checked as (
    select r.*,
           case when holder.id is not null or r.earlier is not null then 'email' end as kind,
           coalesce(holder.id, r.earlier) as other
      from ranked r
      left join lateral (
        select c.id from public.clients c
         where r.email is not null and c.email is not null and lower(c.email) = lower(r.email) and c.id <> r.id
           and c.synced_from is not null
         limit 1
      ) holder on true
  ), suggested as (  -- FOR KEY SHARE: a native client deleted meanwhile is skipped, not a foreign key error
    insert into private.link_suggestions (client_id, project_b_user_id)
    select n.id, k.id
      from checked k
      join public.clients n
        on k.email is not null and n.email is not null and lower(n.email) = lower(k.email)
       and n.synced_from is null and n.id <> k.id
     where k.kind is null
       for key share of n
    on conflict do nothing
  ), written as (
    insert into public.clients as c
      (id, full_name, email, notes, therapist_id, status, synced_from,
       source_attributes, source_updated_at, last_synced_at)
    select k.id, k.full_name, k.email, k.notes, p_therapist_id, 'active', 'project_b',
           k.source_attributes, k.source_updated_at, now()
      from checked k
     where k.kind is null
    on conflict (id) do update set
      synced_from = 'project_b',
      full_name = excluded.full_name,
      email = excluded.email,
      source_attributes = excluded.source_attributes,
      source_updated_at = excluded.source_updated_at,
      last_synced_at = excluded.last_synced_at,
      status = 'active',
      updated_at = now()
    where (c.synced_from = 'project_b'  -- a row Project A created itself is never written, unless it was invited
           or exists (select 1 from private.client_invites i where i.client_id = c.id))
      and (c.source_updated_at is null or c.source_updated_at < excluded.source_updated_at)
    returning c.id, case when c.xmax = 0 then 'inserted' else 'updated' end as result
  )
  -- One aggregation pass: the five arrays are in the same (unspecified) order, which is all unnest needs.
  select array_agg(k.id),
         array_agg(case when k.kind is not null then 'conflict' else coalesce(w.result, 'unchanged') end),
         array_agg(k.kind),
         array_agg(k.other),
         array_agg(to_jsonb(k.notices))
    into v_ids, v_outcomes, v_kinds, v_others, v_notices
    from checked k
    left join written w on w.id = k.id;

  -- The upsert's guard skipped a row Project A created itself (one committed while this ran included: this
  -- new statement sees it): a conflict of kind id. Only an unchanged row can be one.
  if 'unchanged' = any(v_outcomes) then
    select coalesce(array_agg(n.id), '{}') into v_native
      from unnest(v_ids, v_outcomes) as u (id, outcome)
      join public.clients n on n.id = u.id and n.synced_from is null
     where u.outcome = 'unchanged';
  end if;

  return query
    select u.id,
           case when u.id = any(v_native) then 'conflict' else u.outcome end,
           case when u.id = any(v_native) then 'id' else u.kind end,
           u.other,
           array(select jsonb_array_elements_text(u.notices))
      from unnest(v_ids, v_outcomes, v_kinds, v_others, v_notices) as u (id, outcome, kind, other, notices)
     order by u.id;

  perform private.remember_outcomes(v_ids, v_outcomes, v_kinds, v_others, v_native);
end;
$$;

comment on function public.upsert_synced_clients(jsonb, uuid) is
  'Writes Project B''s states of clients ([{id, profile, updated_at}]): only a newer state, never a client Project A created itself, never an email another synced client holds; records and resolves conflicts, and suggests linking a native client with the same email. One row per id: inserted, updated, unchanged or conflict (kind email or id), and the notices of what was bounded on the way in.';
