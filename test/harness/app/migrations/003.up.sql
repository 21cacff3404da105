-- message: add audit log (fails midway on purpose)
CREATE TABLE audit_log (
  id serial PRIMARY KEY,
  note text NOT NULL
);
ALTER TABLE items ADD COLUMN sku text;
-- The statement below fails: the whole migration, including the two above, rolls back.
INSERT INTO audit_log (note) SELECT note FROM table_that_does_not_exist;
