import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { deployConfigSchema } from "../../src/config/deploy";
import { hostValues } from "../../src/config/host-values";
import { buildDeployStdin, databaseUrl } from "../../src/deploy/stdin";
import { dotenvKeys } from "../../src/synth/outputs";

const { database } = deployConfigSchema.parse({
  hosts: [{ name: "a", host: "a.example.org" }],
  image: { repository: "ghcr.io/o/r/backend", tag: "v1" },
});

/** The stdin of a stack without app secrets of its own, or with `appSecrets` names. */
function stdin(
  secrets: Record<string, string | undefined>,
  appSecrets?: Record<string, string>,
): string {
  const specs = hostValues(Object.keys(appSecrets ?? {})).specs;
  return buildDeployStdin(specs, database, { secrets, ...(appSecrets ? { appSecrets } : {}) });
}

describe("the deploy's stdin", () => {
  test("is one dotenv line per secret, in a fixed order", () => {
    assert.equal(
      stdin({ postgresPassword: "pw", jwtSecretKey: "jwt" }),
      [
        "POSTGRES_PASSWORD=pw",
        "DATABASE_URL=postgresql+asyncpg://clicky:pw@postgres:5432/clicky_db",
        "JWT_SECRET_KEY=jwt",
        "",
      ].join("\n"),
    );
  });

  test("adds the registry pair for a private image", () => {
    const text = stdin({
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
    const text = stdin({ postgresPassword: password, jwtSecretKey: "j" });
    assert.equal(text.split("\n")[0], `POSTGRES_PASSWORD=${password}`);
  });

  test("refuses a line break without naming the value", () => {
    assert.throws(
      () => stdin({ postgresPassword: "pw", jwtSecretKey: "line1\nsecret-tail" }),
      (err: Error) =>
        err.message ===
          "secret jwtSecretKey contains a line break or NUL; the deploy passes it as one dotenv line" &&
        !err.message.includes("secret-tail"),
    );
  });

  test("refuses an empty or missing required value, naming its config key", () => {
    assert.throws(
      () => stdin({ postgresPassword: "", jwtSecretKey: "j" }),
      /secret postgresPassword must not be empty/,
    );
    assert.throws(
      () => stdin({ postgresPassword: "p" }),
      /^Error: secret jwtSecretKey is not set$/,
    );
    assert.throws(
      () => stdin({ postgresPassword: "p", jwtSecretKey: "j" }, { SENTRY_DSN: "" }),
      /secret appSecrets\.SENTRY_DSN must not be empty/,
    );
  });

  test("carries the app's own secrets after the fixed ones, sorted by name", () => {
    const text = stdin(
      { postgresPassword: "pw", jwtSecretKey: "jwt" },
      { SMTP_PASSWORD: "mail pw", SENTRY_DSN: "https://k@sentry.example/1" },
    );
    assert.deepEqual(text.trimEnd().split("\n").slice(3), [
      "SENTRY_DSN=https://k@sentry.example/1",
      "SMTP_PASSWORD=mail pw",
    ]);
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
