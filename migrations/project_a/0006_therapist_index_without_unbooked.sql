-- Project A: clients synced from Project B that no therapist has booked have no therapist_id. They stay out of
-- the therapist index (row level security's `therapist_id = auth.uid()` implies not null, so it still uses it),
-- and a backfill of many such clients no longer writes an index entry for each of them.
drop index public.clients_therapist_id_idx;
create index clients_therapist_id_idx on public.clients (therapist_id) where therapist_id is not null;
