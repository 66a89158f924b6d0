-- apply_sync_page without keeping anything: what it would write, counted, then rolled back (a subtransaction
-- that ends in an error this function catches). A dry run over either backend: PostgREST's rpc commits what it
-- runs, so the transaction cannot be rolled back from the outside.
create function public.apply_sync_page_dry_run(
  p_clients jsonb,
  p_absences jsonb default '[]'::jsonb,
  p_state_name text default null,
  p_watermark timestamptz default null,
  p_watermark_id uuid default null
) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_answer jsonb;
begin
  begin
    v_answer := public.apply_sync_page(p_clients, p_absences, p_state_name, p_watermark, p_watermark_id);
    raise exception 'dry run: rolled back' using errcode = 'P0D01';
  exception when sqlstate 'P0D01' then
    null;
  end;
  return v_answer;
end;
$$;

comment on function public.apply_sync_page_dry_run(jsonb, jsonb, text, timestamptz, uuid) is
  'apply_sync_page''s answer for a page, with nothing kept: the writes are rolled back. sync_client''s dry runs.';

revoke all on function public.apply_sync_page_dry_run(jsonb, jsonb, text, timestamptz, uuid) from public, anon, authenticated;
grant execute on function public.apply_sync_page_dry_run(jsonb, jsonb, text, timestamptz, uuid) to service_role, client_sync;
