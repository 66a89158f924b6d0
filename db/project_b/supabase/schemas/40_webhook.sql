-- Project B: the database webhook that tells project_b_webhook about every change of a client. It sends ids
-- only, and its secret lives in Supabase Vault.
--
-- A dashboard-made webhook (supabase_functions.http_request) posts whole rows: on auth.users that is the
-- password hash, token hashes, phone and metadata, and pg_net keeps each request until it is sent. Its
-- headers, the bearer secret included, sit in the trigger's arguments, which every role reads in
-- pg_trigger. This trigger function posts {"type", "table", "schema", "record": {"id"}, "old_record":
-- {"id"}} and reads the secret from vault.decrypted_secrets; its arguments are the URL and the timeout.
create function private.client_sync_webhook() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_secret text;
begin
  select decrypted_secret into v_secret
    from vault.decrypted_secrets
   where name = 'client_sync_webhook_secret';
  if v_secret is null then
    raise warning 'client_sync_webhook: no secret named client_sync_webhook_secret in Vault; event not sent';
    return null;
  end if;
  perform net.http_post(
    url := tg_argv[0],
    body := jsonb_build_object(
      'type', tg_op,
      'table', tg_table_name,
      'schema', tg_table_schema,
      'record', case when tg_op <> 'DELETE' then jsonb_build_object('id', new.id) end,
      'old_record', case when tg_op <> 'INSERT' then jsonb_build_object('id', old.id) end
    ),
    headers := jsonb_build_object('Content-Type', 'application/json', 'Authorization', 'Bearer ' || v_secret),
    timeout_milliseconds := tg_argv[1]::integer
  );
  return null;
end;
$$;

revoke all on function private.client_sync_webhook() from public;

-- The SHA-256 of each webhook secret that sat in a trigger's arguments, which every role reads in pg_trigger:
-- such a secret is rotated, never installed again. Migration 20261203002100 retires the secrets of webhooks of
-- the earlier kind; install_client_sync_webhook refuses what this holds.
create table private.retired_webhook_secrets (
  sha256 bytea primary key,
  retired_at timestamptz not null default now()
);

-- Installs (or points elsewhere) the database webhook and keeps its secret in Vault. Run it once per
-- environment, as an administrator:
--   select private.install_client_sync_webhook('https://.../webhooks/project-b', '<PROJECT_B_WEBHOOK_SECRET>');
-- It refuses a secret that is or was in any trigger's arguments.
create function private.install_client_sync_webhook(
  p_url text,
  p_secret text,
  p_timeout_ms integer default 5000
) returns void
language plpgsql
set search_path = ''
as $$
declare
  v_secret_id uuid;
begin
  if coalesce(p_url, '') = '' or coalesce(p_secret, '') = '' then
    raise exception 'the webhook URL and secret are required';
  end if;
  if exists (select from private.retired_webhook_secrets where sha256 = sha256(convert_to(p_secret, 'UTF8')))
     or exists (select from pg_catalog.pg_trigger where position(convert_to(p_secret, 'UTF8') in tgargs) > 0) then
    raise exception 'this webhook secret was in trigger arguments, which every database role can read: rotate it'
      using errcode = 'invalid_parameter_value',
            hint = 'Choose a new secret (openssl rand -hex 32), set the functions'' PROJECT_B_WEBHOOK_SECRET '
                   '(ProjectBWebhookSecret) to it, and install the webhook with the new secret.';
  end if;
  select id into v_secret_id from vault.secrets where name = 'client_sync_webhook_secret';
  if v_secret_id is null then
    perform vault.create_secret(p_secret, 'client_sync_webhook_secret', 'Bearer secret of project_b_webhook');
  else
    perform vault.update_secret(v_secret_id, p_secret);
  end if;
  execute format(
    'create or replace trigger client_sync_webhook'
    ' after insert or update or delete on public.profiles'
    ' for each row execute function private.client_sync_webhook(%L, %L)',
    p_url, p_timeout_ms::text
  );
  execute format(
    'create or replace trigger client_sync_webhook'
    ' after update of email on auth.users'
    ' for each row when (old.email is distinct from new.email)'
    ' execute function private.client_sync_webhook(%L, %L)',
    p_url, p_timeout_ms::text
  );
end;
$$;

comment on function private.install_client_sync_webhook(text, text, integer) is
  'Installs the database webhook (or points it elsewhere) on profiles and on email changes of auth.users, and keeps its secret in Vault. Refuses a secret that is or was in trigger arguments. Run once per environment, by an administrator.';

revoke all on function private.install_client_sync_webhook(text, text, integer) from public;

create function private.uninstall_client_sync_webhook() returns void
language plpgsql
set search_path = ''
as $$
begin
  drop trigger if exists client_sync_webhook on public.profiles;
  drop trigger if exists client_sync_webhook on auth.users;
end;
$$;

comment on function private.uninstall_client_sync_webhook() is
  'Removes the database webhook''s triggers.';

revoke all on function private.uninstall_client_sync_webhook() from public;
