-- The demo source database ci/demo dumps: two related tables with a known number of rows.
CREATE TABLE customers (
  id bigint PRIMARY KEY,
  name text NOT NULL,
  email text UNIQUE,
  created_at timestamptz NOT NULL
);
CREATE TABLE orders (
  id bigint PRIMARY KEY,
  customer_id bigint NOT NULL REFERENCES customers (id),
  amount numeric(12, 2) NOT NULL,
  note text
);
INSERT INTO customers
SELECT i, 'customer ' || i, 'c' || i || '@example.org', timestamptz '2026-01-01 00:00:00+00' + i * interval '1 hour'
FROM generate_series(1, 1000) AS i;
INSERT INTO orders
SELECT i, 1 + (i * 7919) % 1000, round((i * 37 % 10000) / 100.0, 2), CASE WHEN i % 5 = 0 THEN NULL ELSE 'order ' || i END
FROM generate_series(1, 5000) AS i;
