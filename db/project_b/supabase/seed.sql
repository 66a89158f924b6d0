-- Sample data of Project B (the design document's): Jane Doe and Bob Wilson.
insert into auth.users (id, email) values
  ('aaaaaaaa-0000-4000-8000-000000000001', 'jane.doe@example.com'),
  ('bbbbbbbb-0000-4000-8000-000000000003', 'bob.wilson@example.com')
on conflict (id) do nothing;

insert into public.profiles (id, name, age, gender_identity, avatar_url) values
  ('aaaaaaaa-0000-4000-8000-000000000001', 'Jane Doe', 35, 'female', null),
  ('bbbbbbbb-0000-4000-8000-000000000003', 'Bob Wilson', 42, 'male', 'https://example.com/avatars/bob.png')
on conflict (id) do nothing;
