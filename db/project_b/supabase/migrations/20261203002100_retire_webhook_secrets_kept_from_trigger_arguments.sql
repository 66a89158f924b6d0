-- A webhook secret that sat in trigger arguments was readable by every role (pg_trigger.tgargs): it is retired
-- (install_client_sync_webhook refuses it from now on) and removed, never kept. Two places can hold one:
--
-- - a webhook of the earlier kind, made the dashboard's way: trigger `client_sync_webhook` on public.profiles
--   or auth.users calling supabase_functions.http_request, the bearer secret in its headers argument. Its
--   triggers are dropped (they also posted whole rows).
-- - the Vault secret that the baseline migration, until this release, moved there from such a webhook. It is
--   the one written in the baseline's own transaction: the CLI and ops/migrate.py insert the ledger row in the
--   transaction of the migration, so that secret's row has the baseline ledger row's xmin (a later install
--   rewrites the row, with a new xmin). It is deleted.
--
-- Either way the webhook sends nothing until it is installed again with a new secret (docs/deployment.md);
-- reconcile catches up on what it missed. Nothing happens on a database that had neither.
do $$
declare
  v_trigger record;
  v_secret text;
  v_secret_id uuid;
  v_removed integer := 0;
begin
  for v_trigger in
    select t.tgname, t.tgrelid::regclass as on_table,
           (string_to_array(encode(t.tgargs, 'escape'), '\000'))[3] as headers
      from pg_catalog.pg_trigger t
      join pg_catalog.pg_proc p on p.oid = t.tgfoid
      join pg_catalog.pg_namespace n on n.oid = p.pronamespace
     where t.tgname = 'client_sync_webhook'
       and t.tgrelid in ('public.profiles'::regclass, 'auth.users'::regclass)
       and n.nspname = 'supabase_functions' and p.proname = 'http_request'
  loop
    -- decode(..., 'escape') undoes encode(..., 'escape'): the argument's bytes as they were written.
    v_secret := substr(
      convert_from(decode(v_trigger.headers, 'escape'), 'UTF8')::jsonb ->> 'Authorization', length('Bearer ') + 1
    );
    if coalesce(v_secret, '') <> '' then
      insert into private.retired_webhook_secrets (sha256) values (sha256(convert_to(v_secret, 'UTF8')))
        on conflict do nothing;
    end if;
    execute format('drop trigger %I on %s', v_trigger.tgname, v_trigger.on_table);
    v_removed := v_removed + 1;
  end loop;

  select s.id, d.decrypted_secret into v_secret_id, v_secret
    from vault.secrets s
    join vault.decrypted_secrets d on d.id = s.id
    join supabase_migrations.schema_migrations m on m.version = '20261202220000' and m.xmin = s.xmin
   where s.name = 'client_sync_webhook_secret';
  if v_secret_id is not null then
    insert into private.retired_webhook_secrets (sha256) values (sha256(convert_to(v_secret, 'UTF8')))
      on conflict do nothing;
    delete from vault.secrets where id = v_secret_id;
    v_removed := v_removed + 1;
  end if;

  if v_removed > 0 then
    raise warning 'client_sync webhook: its secret was in trigger arguments, which every database role can read; it is retired and the webhook is off until installed with a new one: rotate it'
      using hint = 'Choose a new secret (openssl rand -hex 32), set the functions'' PROJECT_B_WEBHOOK_SECRET '
                   '(ProjectBWebhookSecret) to it, and run private.install_client_sync_webhook(<url>, <new secret>).';
  end if;
end
$$;
