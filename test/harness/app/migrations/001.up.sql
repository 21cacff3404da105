-- message: create items
CREATE TABLE items (
  id serial PRIMARY KEY,
  name text NOT NULL
);
INSERT INTO items (name) VALUES ('alpha'), ('beta'), ('gamma');
