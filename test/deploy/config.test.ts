import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  accessoriesOf,
  appHosts,
  deployConfigSchema,
  deploySecretKeys,
  hostKeyProblem,
  registryOf,
} from "../../src/config/deploy";
import { formatIssues } from "../../src/config/problems";
import { secretKeySpecs, sectionSchemas } from "../../src/config/schema";
import { ED25519 } from "../support/keys";

const minimal = {
  hosts: [{ name: "web-1", host: "web-1.example.org" }],
  image: { repository: "ghcr.io/clicky-foundation/clicky-foundation/backend", tag: "v1.2.3" },
};

function problems(value: unknown): string[] {
  const parsed = deployConfigSchema.safeParse(value);
  return parsed.success
    ? []
    : formatIssues(
        "Pulumi.staging.yaml",
        "clicky-delivery",
        parsed.error.issues.map((issue) => ({ ...issue, path: ["deploy", ...issue.path] })),
        () => undefined,
      );
}

describe("the deploy section", () => {
  test("is a section of the stack config, and its secrets are stack secret keys", () => {
    assert.equal(sectionSchemas.deploy, deployConfigSchema);
    for (const spec of deploySecretKeys) assert.ok(secretKeySpecs.includes(spec), spec.key);
  });

  test("takes app hosts with an accessories host; its ports default to PostgreSQL's and Redis's", () => {
    const parsed = deployConfigSchema.parse({
      ...minimal,
      hosts: [
        { name: "web-1", host: "x.org" },
        { name: "web-2", host: "y.org" },
        { name: "db-1", host: "z.org" },
      ],
      accessories: { host: "db-1", privateAddress: "10.0.0.5" },
    });
    assert.deepEqual(accessoriesOf(parsed), {
      kind: "host",
      host: "db-1",
      privateAddress: "10.0.0.5",
      postgresPort: 5432,
      redisPort: 6379,
    });
    assert.deepEqual(
      appHosts(parsed).map((h) => h.name),
      ["web-1", "web-2"],
    );
  });

  test("takes an external database for one host or several; every host is then an app host", () => {
    for (const hosts of [
      [{ name: "web-1", host: "x.org" }],
      [
        { name: "web-1", host: "x.org" },
        { name: "web-2", host: "y.org" },
      ],
    ]) {
      const parsed = deployConfigSchema.parse({
        ...minimal,
        hosts,
        accessories: { external: true },
      });
      assert.deepEqual(accessoriesOf(parsed), { kind: "external", backup: "pg_dump" });
      assert.deepEqual(
        appHosts(parsed).map((h) => h.name),
        hosts.map((h) => h.name),
      );
    }
  });

  test("an external database needs databaseUrl and redisUrl, and no postgresPassword", () => {
    const required = (externalDatabase: boolean) =>
      deploySecretKeys
        .filter((spec) =>
          spec.requiredWhen({
            stack: "staging",
            ownsRepository: false,
            approvalGated: false,
            tokenAuth: true,
            externalDatabase,
          }),
        )
        .map((spec) => spec.key);
    assert.deepEqual(required(true), ["sshPrivateKey", "jwtSecretKey", "databaseUrl", "redisUrl"]);
    assert.deepEqual(required(false), ["sshPrivateKey", "postgresPassword", "jwtSecretKey"]);
  });

  test("needs only hosts and an image; everything else has a safe default", () => {
    const parsed = deployConfigSchema.parse(minimal);
    assert.equal(parsed.appDir, "/opt/clicky-foundation");
    assert.equal(parsed.composeProject, "clicky");
    assert.equal(parsed.compose, "auto");
    assert.deepEqual(parsed.hosts, [
      { name: "web-1", host: "web-1.example.org", port: 22, user: "deploy" },
    ]);
    assert.equal(parsed.migrate, true);
    assert.deepEqual(parsed.migrationCommand, ["alembic", "upgrade", "head"]);
    assert.deepEqual(parsed.backup, {
      keep: 10,
      minFreeMiB: 1024,
      compressionLevel: 1,
      cpuShares: 128,
      timeoutSeconds: 3600,
    });
    assert.deepEqual(parsed.images, {
      postgres: "postgres:16",
      redis: "redis:7-alpine",
      proxy: "nginx:1.27-alpine",
    });
    assert.deepEqual(parsed.database, {
      name: "clicky_db",
      user: "clicky",
      urlScheme: "postgresql+asyncpg",
    });
    assert.deepEqual(parsed.proxy, { bindAddress: "0.0.0.0", port: 80 });
    assert.deepEqual(parsed.app.verifyPaths, ["/health", "/api/v1/health"]);
    assert.equal(parsed.health.timeoutSeconds, 180);
    assert.equal(parsed.watchSeconds, 5);
    assert.equal(parsed.drainSeconds, 10);
    assert.equal(parsed.stopTimeoutSeconds, 30);
  });

  test("refuses a watch window or a compression level out of range, naming the key", () => {
    for (const [patch, path] of [
      [{ watchSeconds: -1 }, "watchSeconds"],
      [{ watchSeconds: 601 }, "watchSeconds"],
      [{ backup: { compressionLevel: 10 } }, "backup.compressionLevel"],
      [{ backup: { compressionLevel: 1.5 } }, "backup.compressionLevel"],
      [{ backup: { cpuShares: 1 } }, "backup.cpuShares"],
      [{ backup: { cpuShares: -1 } }, "backup.cpuShares"],
      [{ backup: { cpuShares: 262_145 } }, "backup.cpuShares"],
      [{ backup: { timeoutSeconds: -1 } }, "backup.timeoutSeconds"],
      [{ backup: { timeoutSeconds: 2.5 } }, "backup.timeoutSeconds"],
      [{ backup: { timeoutSeconds: 86_401 } }, "backup.timeoutSeconds"],
    ] as const) {
      const result = deployConfigSchema.safeParse({ ...minimal, ...patch });
      assert.equal(result.success, false, JSON.stringify(patch));
      assert.deepEqual(
        result.error?.issues.map((i) => i.path.join(".")),
        [path],
        JSON.stringify(patch),
      );
    }
  });

  test("keeps a pinned host key, trimmed", () => {
    const parsed = deployConfigSchema.parse({
      ...minimal,
      hosts: [{ name: "web-1", host: "10.0.0.5", hostKey: ` ${ED25519} ` }],
    });
    assert.equal(parsed.hosts[0]?.hostKey, ED25519);
  });

  const rejected: [string, unknown, string][] = [
    ["no host", { ...minimal, hosts: [] }, "clicky-delivery:deploy.hosts: list at least one host"],
    [
      "two hosts with one name",
      {
        ...minimal,
        hosts: [
          { name: "a", host: "x.org" },
          { name: "a", host: "y.org" },
        ],
      },
      'clicky-delivery:deploy.hosts[1].name: "a" is used by two hosts',
    ],
    [
      "two hosts that would each run their own database",
      {
        ...minimal,
        hosts: [
          { name: "web-1", host: "x.org" },
          { name: "web-2", host: "y.org" },
        ],
      },
      "clicky-delivery:deploy.hosts: 2 hosts (web-1, web-2) would each run their own PostgreSQL and Redis, and the users' data would split between them: name the host that runs them in deploy.accessories.host",
    ],
    [
      "an accessories host that is not a host",
      {
        ...minimal,
        hosts: [
          { name: "web-1", host: "x.org" },
          { name: "web-2", host: "y.org" },
        ],
        accessories: { host: "db-1", privateAddress: "10.0.0.5" },
      },
      'clicky-delivery:deploy.accessories.host: "db-1" is not a host of deploy.hosts (web-1, web-2)',
    ],
    [
      "an accessories host with no app host",
      { ...minimal, accessories: { host: "web-1", privateAddress: "10.0.0.5" } },
      'clicky-delivery:deploy.accessories.host: "web-1" is the only host: it would run the database and no app',
    ],
    [
      "an accessories host without its private address",
      {
        ...minimal,
        hosts: [
          { name: "web-1", host: "x.org" },
          { name: "db-1", host: "y.org" },
        ],
        accessories: { host: "db-1" },
      },
      "clicky-delivery:deploy.accessories.privateAddress",
    ],
    [
      "a DNS name as the private address (ports are published on an address)",
      {
        ...minimal,
        hosts: [
          { name: "web-1", host: "x.org" },
          { name: "db-1", host: "y.org" },
        ],
        accessories: { host: "db-1", privateAddress: "db.internal" },
      },
      "clicky-delivery:deploy.accessories.privateAddress: expected the accessories host's IP address on a private network",
    ],
    [
      "an external database beside an accessories host",
      {
        ...minimal,
        accessories: { external: true, host: "web-1", privateAddress: "10.0.0.5" },
      },
      "clicky-delivery:deploy.accessories.host: an external database and an accessories host exclude each other",
    ],
    [
      "a port of an accessories host with an external database",
      { ...minimal, accessories: { external: true, postgresPort: 6432 } },
      "clicky-delivery:deploy.accessories.postgresPort: goes only with accessories.host",
    ],
    [
      "a backup choice without an external database",
      {
        ...minimal,
        hosts: [
          { name: "web-1", host: "x.org" },
          { name: "db-1", host: "y.org" },
        ],
        accessories: { host: "db-1", privateAddress: "10.0.0.5", backup: "provider" },
      },
      "clicky-delivery:deploy.accessories.backup: goes only with accessories.external",
    ],
    [
      "accessories that say neither where nor external",
      { ...minimal, accessories: {} },
      "clicky-delivery:deploy.accessories: set host (the host of deploy.hosts that runs PostgreSQL and Redis) with privateAddress, or external: true",
    ],
    [
      "an unknown backup kind",
      { ...minimal, accessories: { external: true, backup: "snapshot" } },
      "clicky-delivery:deploy.accessories.backup",
    ],
    [
      "a relative appDir",
      { ...minimal, appDir: "opt/app" },
      "clicky-delivery:deploy.appDir: expected an absolute path",
    ],
    [
      "an appDir with ..",
      { ...minimal, appDir: "/opt/../etc" },
      "clicky-delivery:deploy.appDir: must not contain '..'",
    ],
    [
      "an appDir with a space",
      { ...minimal, appDir: "/opt/my app" },
      "clicky-delivery:deploy.appDir: expected an absolute path",
    ],
    [
      "a top-level appDir",
      { ...minimal, appDir: "/opt" },
      "clicky-delivery:deploy.appDir: must be at least two levels deep",
    ],
    [
      "an image tag with a slash",
      { ...minimal, image: { ...minimal.image, tag: "feature/x" } },
      "clicky-delivery:deploy.image.tag: expected an image tag",
    ],
    [
      "a short digest",
      { ...minimal, image: { ...minimal.image, digest: "sha256:abc" } },
      "clicky-delivery:deploy.image.digest: expected a digest",
    ],
    [
      "an upper-case repository",
      { ...minimal, image: { ...minimal.image, repository: "ghcr.io/Org/App" } },
      "clicky-delivery:deploy.image.repository: expected an image repository",
    ],
    [
      "a host key of an unknown type",
      { ...minimal, hosts: [{ name: "a", host: "x.org", hostKey: "ssh-dss AAAA" }] },
      'clicky-delivery:deploy.hosts[0].hostKey: unknown host key type "ssh-dss"',
    ],
    [
      "a host key with the host name still in front",
      { ...minimal, hosts: [{ name: "a", host: "x.org", hostKey: `x.org ${ED25519}` }] },
      'clicky-delivery:deploy.hosts[0].hostKey: expected "<type> <base64 key>"',
    ],
    [
      "an app env entry the deploy sets from secrets",
      { ...minimal, app: { env: { DATABASE_URL: "postgres://x" } } },
      "clicky-delivery:deploy.app.env.DATABASE_URL: DATABASE_URL is set by the deploy from the stack's secrets",
    ],
    [
      "a lower-case env name",
      { ...minimal, app: { env: { app_env: "x" } } },
      'clicky-delivery:deploy.app.env.app_env: "app_env" is not an upper-case variable name',
    ],
    [
      "keep of zero backups",
      { ...minimal, backup: { keep: 0 } },
      "clicky-delivery:deploy.backup.keep:",
    ],
    [
      "an unknown key",
      { ...minimal, migrations: true },
      "clicky-delivery:deploy.migrations: unknown key",
    ],
    [
      "migrate as a string",
      { ...minimal, migrate: "false" },
      "clicky-delivery:deploy.migrate: expected boolean",
    ],
  ];
  for (const [name, value, expected] of rejected) {
    test(`rejects ${name}`, () => {
      const lines = problems(value);
      assert.ok(
        lines.some((line) => line.includes(expected)),
        `expected a problem containing ${JSON.stringify(expected)}, got:\n${lines.join("\n")}`,
      );
    });
  }
});

describe("hostKeyProblem", () => {
  test("accepts a key line as ssh-keyscan prints it (without the host)", () => {
    assert.equal(hostKeyProblem(ED25519), undefined);
  });
  test("rejects a blob of another key type", () => {
    const rsaBlob = Buffer.concat([
      Buffer.from([0, 0, 0, 7]),
      Buffer.from("ssh-rsa"),
      Buffer.alloc(8),
    ]);
    assert.match(
      hostKeyProblem(`ssh-ed25519 ${rsaBlob.toString("base64")}`) ?? "",
      /not a ssh-ed25519 key \(its blob says "ssh-rsa"\)/,
    );
  });
  test("rejects text that is not base64", () => {
    assert.equal(hostKeyProblem("ssh-ed25519 not*base64"), "the key is not base64");
  });
});

describe("registryOf", () => {
  const cases: [string, string][] = [
    ["ghcr.io/o/r/backend", "ghcr.io"],
    ["127.0.0.1:5000/clicky/backend", "127.0.0.1:5000"],
    ["localhost/backend", "localhost"],
    ["library/postgres", "docker.io"],
    ["postgres", "docker.io"],
  ];
  for (const [repository, registry] of cases) {
    test(`${repository} -> ${registry}`, () => assert.equal(registryOf(repository), registry));
  }
});
