-- A number that every change to the webhooks replaces, read with each new contact's routing read: while it
-- stands, an instance reuses the webhook subscriptions it last read rather than read them again for every
-- contact (a round trip of the nine a contact cost). A trigger replaces it, in the transaction of the change,
-- so that no change to the table can forget to, whichever instance makes it. It comes from a sequence, which
-- never gives a number twice, not even after a rollback. Its twin is
-- migrations/sqlite/0012_webhook_generation.sql.
CREATE TABLE webhook_generation (
    id         SMALLINT PRIMARY KEY CHECK (id = 1),
    generation BIGINT   NOT NULL
);
INSERT INTO webhook_generation (id, generation) VALUES (1, 0);
CREATE SEQUENCE webhook_generation_seq;
CREATE FUNCTION webhooks_changed() RETURNS trigger AS $$
BEGIN
    UPDATE webhook_generation SET generation = nextval('webhook_generation_seq');
    RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER webhooks_changed AFTER INSERT OR UPDATE OR DELETE ON webhooks
    FOR EACH STATEMENT EXECUTE FUNCTION webhooks_changed();
