-- Project A: the ids of open conflicts in id order after `p_after`, so that reconcile retries every open
-- conflict page by page (a run used to retry only the `limit` first seen, and the others waited behind them
-- for as long as those stayed open).
create function public.open_conflict_ids(p_after uuid, p_limit integer)
returns setof uuid
language sql
stable
security definer
set search_path = ''
as $$
  select c.client_id from private.sync_conflicts c
   where c.resolved_at is null and (p_after is null or c.client_id > p_after)
   order by c.client_id
   limit least(greatest(p_limit, 0), 5000)
$$;

revoke all on function public.open_conflict_ids(uuid, integer) from public, anon, authenticated;
grant execute on function public.open_conflict_ids(uuid, integer) to service_role;
