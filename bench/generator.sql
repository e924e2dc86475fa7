-- Realistic benchmark data: random text, numerics, floats, timestamps, jsonb, bytea, uuids, arrays
-- and NULLs (not pgbench's blank-padded rows, which compress 40:1), with indexes (a text one
-- included) and foreign keys. psql variable :scale multiplies the row counts; the seed is fixed.
SELECT setseed(0.42);

CREATE TABLE accounts (
  id bigint PRIMARY KEY,
  name text NOT NULL,
  email text,
  balance numeric(14, 2),
  score float8,
  created_at timestamptz,
  tags text[],
  profile jsonb,
  avatar bytea,
  external_id uuid
);
INSERT INTO accounts
SELECT i,
       md5(random()::text) || ' ' || substr(md5(random()::text), 1, (random() * 20)::int),
       CASE WHEN random() < 0.1 THEN NULL ELSE 'user' || i || '@example.org' END,
       round((random() * 100000)::numeric, 2),
       random() * 1000,
       timestamptz '2020-01-01 00:00:00+00' + random() * interval '5 years',
       ARRAY[substr(md5(random()::text), 1, 8), substr(md5(random()::text), 1, 6)],
       jsonb_build_object('age', (random() * 80)::int, 'bio', md5(random()::text), 'vip', random() < 0.05),
       decode(md5(random()::text) || md5(random()::text), 'hex'),
       gen_random_uuid()
FROM generate_series(1, 2000 * :scale) AS i;
CREATE INDEX accounts_email ON accounts (email);

CREATE TABLE orders (
  id bigserial PRIMARY KEY,
  account_id bigint NOT NULL REFERENCES accounts (id),
  amount numeric(12, 2),
  quantity int,
  status text,
  note text,
  ordered_at timestamptz
);
INSERT INTO orders (account_id, amount, quantity, status, note, ordered_at)
SELECT 1 + (random() * (2000 * :scale - 1))::bigint,
       round((random() * 500)::numeric, 2),
       1 + (random() * 9)::int,
       (ARRAY['new', 'paid', 'shipped', 'returned'])[1 + (random() * 3)::int],
       CASE WHEN random() < 0.3 THEN NULL ELSE repeat(md5(random()::text), 1 + (random() * 3)::int) END,
       timestamptz '2024-01-01 00:00:00+00' + random() * interval '2 years'
FROM generate_series(1, 10000 * :scale);
CREATE INDEX orders_account ON orders (account_id);
CREATE INDEX orders_ordered_at ON orders (ordered_at);

CREATE TABLE events (
  id bigserial PRIMARY KEY,
  account_id bigint REFERENCES accounts (id),
  kind text NOT NULL,
  payload jsonb,
  happened_at timestamptz NOT NULL
);
INSERT INTO events (account_id, kind, payload, happened_at)
SELECT CASE WHEN random() < 0.05 THEN NULL ELSE 1 + (random() * (2000 * :scale - 1))::bigint END,
       (ARRAY['login', 'view', 'click', 'purchase', 'logout'])[1 + (random() * 4)::int],
       jsonb_build_object('path', '/' || substr(md5(random()::text), 1, 12), 'ms', (random() * 900)::int,
                          'ua', substr(md5(random()::text), 1, 24)),
       timestamptz '2025-01-01 00:00:00+00' + random() * interval '1 year'
FROM generate_series(1, 20000 * :scale);
CREATE INDEX events_kind_at ON events (kind, happened_at);
ANALYZE;
