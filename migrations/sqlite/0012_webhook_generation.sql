-- A number that every change to the webhooks replaces, read with each new contact's routing read: while it
-- stands, the server reuses the webhook subscriptions it last read rather than read them again for every
-- contact. Triggers replace it, so that no change to the table can forget to. It is random rather than
-- counted, so that it never comes back: a contact that read the webhooks in a batch whose commit then failed
-- saw a number that is gone, and a later change must not bring that number back with other webhooks. Its
-- twin is migrations/postgres/0012_webhook_generation.sql.
CREATE TABLE webhook_generation (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL
);
INSERT INTO webhook_generation (id, generation) VALUES (1, 0);
CREATE TRIGGER webhooks_inserted AFTER INSERT ON webhooks
BEGIN
    UPDATE webhook_generation SET generation = random();
END;
CREATE TRIGGER webhooks_updated AFTER UPDATE ON webhooks
BEGIN
    UPDATE webhook_generation SET generation = random();
END;
CREATE TRIGGER webhooks_deleted AFTER DELETE ON webhooks
BEGIN
    UPDATE webhook_generation SET generation = random();
END;
