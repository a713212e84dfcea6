CREATE TABLE audit (
    id bigserial PRIMARY KEY,
    account bigint NOT NULL REFERENCES accounts (id),
    note text NOT NULL
);
