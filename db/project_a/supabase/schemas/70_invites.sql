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
