-- Sample data of Project A (the design document's): two therapists, Jane Doe already synced
-- from Project B, John Smith only here. Bob Wilson lives only in Project B.
insert into auth.users (id, email) values
  ('11111111-1111-4111-8111-111111111111', 'dr.rivera@example.com'),
  ('22222222-2222-4222-8222-222222222222', 'dr.chen@example.com')
on conflict (id) do nothing;

insert into public.clients
  (id, full_name, email, notes, therapist_id, status, synced_from, source_attributes, source_updated_at, last_synced_at)
values
  ('aaaaaaaa-0000-4000-8000-000000000001', 'Jane Doe', 'jane.doe@example.com',
   'Synced from Project B. Age: 35, Gender: female', '11111111-1111-4111-8111-111111111111', 'active',
   'project_b', '{"age": 35, "gender_identity": "female", "avatar_url": null}', now(), now()),
  ('aaaaaaaa-0000-4000-8000-000000000002', 'John Smith', 'john.smith@example.com',
   null, '11111111-1111-4111-8111-111111111111', 'active', null, '{}', null, null)
on conflict (id) do nothing;

insert into public.therapists (id) values
  ('11111111-1111-4111-8111-111111111111'),
  ('22222222-2222-4222-8222-222222222222')
on conflict (id) do nothing;
