-- Booking as the therapist in ONE statement: the service role's connection calls this with the
-- verified claims; it switches to the `authenticated` role and sets request.jwt.claims for the rest
-- of the transaction (what PostgREST does before a request), then public.create_session runs under
-- row level security. A security invoker function may change the role; a definer one may not.
create function private.create_session_as(
  p_claims text,
  p_client_id uuid,
  p_starts_at timestamptz,
  p_duration_minutes integer,
  p_notes text,
  p_idempotency_key text
) returns jsonb
language plpgsql
security invoker
set search_path = ''
as $$
begin
  perform set_config('role', 'authenticated', true);
  perform set_config('request.jwt.claims', p_claims, true);
  return public.create_session(p_client_id, p_starts_at, p_duration_minutes, p_notes, p_idempotency_key);
end;
$$;

revoke all on function private.create_session_as(text, uuid, timestamptz, integer, text, text) from public;
grant execute on function private.create_session_as(text, uuid, timestamptz, integer, text, text) to service_role;
