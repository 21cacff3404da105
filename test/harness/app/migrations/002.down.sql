ALTER TABLE items DROP COLUMN price_cents;
