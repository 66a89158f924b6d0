-- copy_client_for_booking for a caller that is not the therapist's own request: the client backend, which books
-- with the therapist's token over PostgREST but writes the copy with the service-role key. It takes the verified
-- claims (as book_session_as does) and answers what copy_client_for_booking answers.
create function public.copy_client_as(p_claims jsonb, p_client_id uuid, p_client jsonb default null)
returns jsonb
language plpgsql
security invoker
set search_path = ''
as $$
begin
  perform set_config('request.jwt.claims', p_claims::text, true);
  return public.copy_client_for_booking(p_client_id, p_client);
end;
$$;

comment on function public.copy_client_as(jsonb, uuid, jsonb) is
  'copy_client_for_booking with the verified claims of the therapist (p_claims), for the client backend: not_a_therapist, or the copy''s row as client and copy_refused; without a copy, held_elsewhere.';

revoke all on function public.copy_client_as(jsonb, uuid, jsonb) from public, anon, authenticated;
grant execute on function public.copy_client_as(jsonb, uuid, jsonb) to service_role;
