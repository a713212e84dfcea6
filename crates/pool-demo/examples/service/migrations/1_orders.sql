CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    customer bigint NOT NULL,
    cents bigint NOT NULL CHECK (cents > 0),
    placed_at timestamptz NOT NULL DEFAULT now()
);
