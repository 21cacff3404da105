import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { deployConfigSchema } from "../../src/config/deploy";
import { buildDeployStdin, databaseUrl } from "../../src/deploy/stdin";
import { dotenvKeys } from "../../src/synth/outputs";

const { database } = deployConfigSchema.parse({
  hosts: [{ name: "a", host: "a.example.org" }],
  image: { repository: "ghcr.io/o/r/backend", tag: "v1" },
});

describe("the deploy's stdin", () => {
  test("is one dotenv line per secret, in a fixed order", () => {
    assert.equal(
      buildDeployStdin(database, { postgresPassword: "pw", jwtSecretKey: "jwt" }),
      [
        "POSTGRES_PASSWORD=pw",
        "DATABASE_URL=postgresql+asyncpg://clicky:pw@postgres:5432/clicky_db",
        "JWT_SECRET_KEY=jwt",
        "",
      ].join("\n"),
    );
  });

  test("adds the registry pair for a private image", () => {
    const text = buildDeployStdin(database, {
      postgresPassword: "pw",
      jwtSecretKey: "jwt",
      registryUsername: "bot",
      registryToken: "ghp_x",
    });
    assert.deepEqual(dotenvKeys(text), [
      "POSTGRES_PASSWORD",
      "DATABASE_URL",
      "JWT_SECRET_KEY",
      "REGISTRY_USERNAME",
      "REGISTRY_TOKEN",
    ]);
  });

  test("keeps a value with spaces, quotes, $ and non-ASCII text verbatim", () => {
    const password = `a b'c"d$e\`f é`;
    const text = buildDeployStdin(database, { postgresPassword: password, jwtSecretKey: "j" });
    assert.equal(text.split("\n")[0], `POSTGRES_PASSWORD=${password}`);
  });

  test("refuses a line break without naming the value", () => {
    assert.throws(
      () =>
        buildDeployStdin(database, { postgresPassword: "pw", jwtSecretKey: "line1\nsecret-tail" }),
      (err: Error) =>
        err.message ===
          "secret jwtSecretKey contains a line break or NUL; the deploy passes it as one dotenv line" &&
        !err.message.includes("secret-tail"),
    );
  });

  test("refuses an empty value and half a registry pair", () => {
    assert.throws(
      () => buildDeployStdin(database, { postgresPassword: "", jwtSecretKey: "j" }),
      /secret postgresPassword must not be empty/,
    );
    assert.throws(
      () =>
        buildDeployStdin(database, {
          postgresPassword: "p",
          jwtSecretKey: "j",
          registryToken: "t",
        }),
      /registryUsername and registryToken go together/,
    );
  });
});

describe("DATABASE_URL", () => {
  test("uses the driver's scheme and percent-encodes the password", () => {
    assert.equal(
      databaseUrl(database, "p@ss w/rd:é%"),
      "postgresql+asyncpg://clicky:p%40ss%20w%2Frd%3A%C3%A9%25@postgres:5432/clicky_db",
    );
  });
});
