-- Project B: the API roles lose TRUNCATE, TRIGGER and REFERENCES on profiles, which Supabase's default privileges
-- grant: TRUNCATE empties the table past row level security (and past the deletion records and the webhook,
-- which are row triggers), and a trigger a user attaches runs its code as whoever writes the table next.
revoke truncate, trigger, references on public.profiles from anon, authenticated;
