-- message: add items.price_cents
ALTER TABLE items ADD COLUMN price_cents integer NOT NULL DEFAULT 0;
