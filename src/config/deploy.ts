import { z } from "zod";
import { hostAddressProblem } from "./host-address";
import { APP_SECRETS_KEY, hostValueCatalog, reservedEnvReason } from "./host-values";
import { requiredHints } from "./problems";
import type { SecretKeySpec } from "./secret-keys";

/**
 * An absolute POSIX path made of safe characters only: it is embedded in the deploy script and
 * in the compose file, so no character may need quoting (the script still quotes it).
 */
const absolutePath = z
  .string()
  .regex(
    /^\/[A-Za-z0-9._/-]*[A-Za-z0-9._-]$/,
    "expected an absolute path of letters, digits, '.', '_', '-' and '/', e.g. /opt/clicky-foundation",
  )
  .refine((p) => !p.split("/").includes(".."), "must not contain '..'")
  .refine((p) => p.split("/").filter(Boolean).length >= 2, "must be at least two levels deep");

/** A DNS name or an IPv4/IPv6 address, checked by {@link hostAddressProblem}. */
const hostAddress = z.string().superRefine((host, ctx) => {
  const problem = hostAddressProblem(host);
  if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
});

/** Public key algorithms an OpenSSH server offers as host keys. */
const HOST_KEY_TYPES = [
  "ssh-ed25519",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
  "ssh-rsa",
] as const;

/**
 * Why a host key line is unusable, or `undefined`. A host key line is `<type> <base64 blob>`,
 * as `ssh-keyscan -t ed25519 <host>` prints it after the host name; the blob itself starts with
 * the type, which catches a key pasted under the wrong type or truncated.
 *
 * @example hostKeyProblem("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI...") // undefined
 */
export function hostKeyProblem(line: string): string | undefined {
  const parts = line.trim().split(/\s+/);
  const [type, blob] = parts;
  if (parts.length !== 2 || type === undefined || blob === undefined) {
    return 'expected "<type> <base64 key>", e.g. the output of `ssh-keyscan -t ed25519 <host>` without the host name';
  }
  if (!(HOST_KEY_TYPES as readonly string[]).includes(type)) {
    return `unknown host key type "${type}" (expected one of: ${HOST_KEY_TYPES.join(", ")})`;
  }
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(blob)) return "the key is not base64";
  const bytes = Buffer.from(blob, "base64");
  const nameLength = bytes.length >= 4 ? bytes.readUInt32BE(0) : -1;
  const name = nameLength > 0 ? bytes.subarray(4, 4 + nameLength).toString("latin1") : "";
  if (name !== type) {
    return `the key is not a ${type} key (its blob says "${name.slice(0, 40)}"); copy the whole line again`;
  }
  return undefined;
}

const hostSchema = z.strictObject({
  /** Short name of the host: names its resources (`deploy-<name>`), e.g. `web-1`. */
  name: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]{0,30}$/, "expected a short name: lowercase letters, digits, '-'"),
  /** Address the deploy connects to over SSH. */
  host: hostAddress,
  /** SSH port. */
  port: z.number().int().min(1).max(65_535).default(22),
  /** Login user; must be in the `docker` group and own `appDir`. Its login shell must be bash. */
  user: z
    .string()
    .regex(/^[a-z_][a-z0-9_-]{0,31}$/, "expected a Unix user name")
    .default("deploy"),
  /**
   * The host's SSH host key, `<type> <base64>` (`ssh-keyscan -t ed25519 <host>`): the deploy
   * refuses to talk to any other server. Required in production; without it, staging warns.
   */
  hostKey: z
    .string()
    .superRefine((line, ctx) => {
      const problem = hostKeyProblem(line);
      if (problem) ctx.addIssue({ code: "custom", message: problem });
    })
    .transform((line) => line.trim())
    .optional(),
});

/** `repository` of an image reference: lowercase path components, optional registry host. */
const imageRepository = z
  .string()
  .regex(
    /^([A-Za-z0-9.-]+(:[0-9]+)?\/)?[a-z0-9]+([._-][a-z0-9]+)*(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/,
    "expected an image repository, e.g. ghcr.io/clicky-foundation/clicky-foundation/backend",
  )
  .register(requiredHints, {
    hint: "the image repository the pipeline pushes to, e.g. ghcr.io/<owner>/<repo>/backend",
  });
const imageTag = z
  .string()
  .regex(
    /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/,
    "expected an image tag, e.g. sha-1a2b3c4 or v1.4.2",
  );
const imageDigest = z
  .string()
  .regex(/^sha256:[a-f0-9]{64}$/, "expected a digest: sha256:<64 hex characters>");
/** A full image reference for an infrastructure service, e.g. `postgres:16`. */
const imageReference = z
  .string()
  .regex(
    /^[A-Za-z0-9._/:-]+(@sha256:[a-f0-9]{64})?$/,
    "expected an image reference, e.g. postgres:16 or nginx:1.27-alpine",
  );

/** Variables the deploy itself sets for the app (`./host-values.ts`); config must not override them. */
export const RESERVED_APP_ENV: readonly string[] = [
  ...hostValueCatalog.map((spec) => spec.name),
  "REDIS_URL",
];

const healthSchema = z.strictObject({
  /** Seconds between two probes of a container's health check. */
  intervalSeconds: z.number().int().min(1).max(300).default(5),
  /** Seconds one probe may take. */
  probeTimeoutSeconds: z.number().int().min(1).max(60).default(3),
  /** Consecutive failed probes that make a container unhealthy. */
  retries: z.number().int().min(1).max(100).default(5),
  /** Grace period after start during which failed probes do not count. */
  startPeriodSeconds: z.number().int().min(0).max(600).default(20),
  /**
   * The deploy gives up on a new version that is not healthy after this long: the one timeout
   * that decides (Docker's unhealthy verdict does not end the wait; an exit or a crash loop does).
   */
  timeoutSeconds: z.number().int().min(5).max(1800).default(180),
});

/**
 * Where PostgreSQL and Redis run when they are not on the one host: on a host of the stack's
 * own (`host`, one of `hosts`, reachable from the app hosts on `privateAddress`), or outside
 * the stack (`external: true`: a managed PostgreSQL and Redis, given as the secret config keys
 * `databaseUrl` and `redisUrl`). Without this section, the one host runs everything.
 */
const accessoriesSchema = z.strictObject({
  /** Name of the host (in `hosts`) that runs PostgreSQL and Redis; it runs no app. */
  host: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]{0,30}$/, "expected the name of a host in deploy.hosts")
    .optional(),
  /**
   * With `host`: the address the app hosts reach it on, on a private network (never a public
   * one: Redis takes no password). PostgreSQL and Redis publish their ports on this address only.
   */
  privateAddress: z
    .string()
    .regex(
      /^[0-9.]+$|^[0-9a-fA-F:]+$/,
      "expected the accessories host's IP address on a private network, e.g. 10.0.0.5",
    )
    .optional(),
  /** With `host`: the port PostgreSQL is published on (default 5432). */
  postgresPort: z.number().int().min(1).max(65_535).optional(),
  /** With `host`: the port Redis is published on (default 6379). */
  redisPort: z.number().int().min(1).max(65_535).optional(),
  /**
   * PostgreSQL and Redis are outside this stack (a managed database): the app gets
   * `databaseUrl` and `redisUrl` (secret config); every host is an app host.
   */
  external: z.literal(true).optional(),
  /**
   * With `external`: `pg_dump`, a verified dump taken from the first app host before the
   * migrations (kept in its `<appDir>/backups`); `provider`, no dump: the provider's
   * point-in-time recovery covers the deploy, and the deploy says so.
   */
  backup: z.enum(["pg_dump", "provider"]).optional(),
});

/**
 * `clicky-delivery:deploy`: where and what this stack deploys over SSH, and how.
 *
 * Every host runs the same compose project: a reverse proxy (nginx) in front of two backend
 * slots (`backend-blue`, `backend-green`), PostgreSQL with a named volume, and Redis. A deploy
 * starts the new version in the idle slot, health-gates it and switches the proxy to it.
 */
export const deployConfigSchema = z
  .strictObject({
    /** Directory of the compose project on each host; the SSH user must own it. */
    appDir: absolutePath.default("/opt/clicky-foundation"),
    /** Compose project name: prefixes containers, the network and the volumes. */
    composeProject: z
      .string()
      .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, "expected lowercase letters, digits, '-' or '_'")
      .default("clicky"),
    /**
     * `auto` uses `docker compose` (v2) when the host has it, else `docker-compose` (v1);
     * `v2` / `v1` insist on one.
     */
    compose: z.enum(["auto", "v2", "v1"]).default("auto"),
    /**
     * The hosts of this environment. One host runs everything; with several, the app hosts are
     * deployed one at a time in this order, and `accessories` names the one that runs the
     * database and Redis.
     */
    hosts: z.array(hostSchema).min(1, "list at least one host"),
    /**
     * With several hosts: the host of PostgreSQL and Redis, and the address the app hosts reach
     * it on (docs/scaling.md). Absent: the one host runs everything.
     */
    accessories: accessoriesSchema.optional(),
    /** The backend image this stack runs. */
    image: z.strictObject({
      /** Repository without tag, e.g. `ghcr.io/<owner>/<repo>/backend`. */
      repository: imageRepository,
      /**
       * Tag to deploy, named in backups and in the host's records. Usually unset in the stack
       * file: the pipelines set it for the run they deploy (and a rollback sets it by hand);
       * without it a run keeps the tag the stack last deployed (see docs/deploy.md, "Which image runs").
       */
      tag: imageTag.optional(),
      /** Manifest digest; when given the host runs exactly these bytes, whatever the tag says. */
      digest: imageDigest.optional(),
    }),
    /**
     * Registry to log in to before pulling (needs the `registryUsername` and `registryToken`
     * secrets); by default the registry host of `image.repository`.
     */
    registry: z
      .string()
      .regex(/^[A-Za-z0-9.-]+(:[0-9]+)?$/, "expected a registry host, e.g. ghcr.io")
      .optional(),
    /** Run the migration command with the new image before any traffic moves to it. */
    migrate: z.boolean().default(true),
    /** The one-off migration command, run in a container of the new image. */
    migrationCommand: z.array(z.string().min(1)).min(1).default(["alembic", "upgrade", "head"]),
    /**
     * A one-off command of the new image that exits 0 when the database needs no migration
     * (alembic 1.17.1 and later: `alembic current --check-heads`). Then the new version starts
     * while the backup runs, and the commit waits for the backup instead; any other exit, or
     * `[]`, keeps the order backup, migration, start.
     */
    migrationCheckCommand: z
      .array(z.string().min(1))
      .default(["alembic", "current", "--check-heads"]),
    /**
     * The most seconds the migration may wait for a lock another session holds. While it
     * waits, every write of the serving version to that table queues behind it; past this the
     * deploy cancels the migration's statement (its transaction rolls back) and tries again.
     */
    migrationLockWaitSeconds: z.number().int().min(1).max(600).default(2),
    /** Tries of a migration that keeps meeting a lock before the deploy fails (cleanly). */
    migrationAttempts: z.number().int().min(1).max(20).default(3),
    /** The most seconds one migration run may take; past this it is stopped and rolled back. */
    migrationTimeoutSeconds: z.number().int().min(10).max(86_400).default(1800),
    backup: z
      .strictObject({
        /** Backups of this stack kept in `<appDir>/backups` (newest first); older are deleted. */
        keep: z.number().int().min(1).max(1000).default(10),
        /** Free space (MiB) the backup disk must keep besides the estimated dump size. */
        minFreeMiB: z.number().int().min(0).default(1024),
        /**
         * gzip level at which a kept dump is compressed in the background, once the deploy no
         * longer waits for it (the dump is written raw: compressing as it wrote took most of its
         * time, docs/deploy.md); 1 halves typical data; 0 keeps it raw. An external database's
         * dump is compressed by pg_dump as it is written.
         */
        compressionLevel: z.number().int().min(0).max(9).default(1),
        /**
         * CPU weight of the dump's container (`docker run --cpu-shares`; Docker's default is
         * 1024, cgroup v2 hosts map it to `cpu.weight`): while the host's CPU is short, the
         * serving version comes first and the dump takes what is left; an idle CPU is the
         * dump's all the same (docs/deploy.md, measured by bench:dump). 0 leaves Docker's default.
         */
        cpuShares: z
          .number()
          .int()
          .max(262_144)
          .refine((n) => n === 0 || n >= 2, "must be 0 (Docker's default) or from 2 to 262144")
          .default(128),
        /**
         * How long a deploy waits for its dump, from its start: a dump still running then is
         * stopped, its partial file removed, and the deploy fails at backup (traffic goes back
         * to the version that served). A dump that never ends would otherwise hold the deploy,
         * its lock and both versions until someone kills it. 0: no limit.
         */
        timeoutSeconds: z.number().int().min(0).max(86_400).default(3600),
      })
      .default({
        keep: 10,
        minFreeMiB: 1024,
        compressionLevel: 1,
        cpuShares: 128,
        timeoutSeconds: 3600,
      }),
    /** Images of the infrastructure services (change them for mirrors or tests). */
    images: z
      .strictObject({
        postgres: imageReference.default("postgres:16"),
        redis: imageReference.default("redis:7-alpine"),
        proxy: imageReference.default("nginx:1.27-alpine"),
      })
      .default({ postgres: "postgres:16", redis: "redis:7-alpine", proxy: "nginx:1.27-alpine" }),
    database: z
      .strictObject({
        /** Database name. */
        name: z
          .string()
          .regex(/^[a-z_][a-z0-9_]{0,62}$/, "expected a lowercase SQL identifier")
          .default("clicky_db"),
        /** Owner role the app connects as. */
        user: z
          .string()
          .regex(/^[a-z_][a-z0-9_]{0,62}$/, "expected a lowercase SQL identifier")
          .default("clicky"),
        /** Scheme of DATABASE_URL as the app's driver wants it. */
        urlScheme: z
          .string()
          .regex(/^postgres(ql)?(\+[a-z0-9]+)?$/, "expected e.g. postgresql+asyncpg")
          .default("postgresql+asyncpg"),
      })
      .default({ name: "clicky_db", user: "clicky", urlScheme: "postgresql+asyncpg" }),
    proxy: z
      .strictObject({
        /** Address the proxy's port is published on. */
        bindAddress: z
          .string()
          .regex(/^[0-9.]+$|^\[?[0-9a-fA-F:]+\]?$/, "expected an IP address, e.g. 0.0.0.0")
          .default("0.0.0.0"),
        /** Host port of the proxy (plain HTTP; TLS terminates in front of it). */
        port: z.number().int().min(1).max(65_535).default(80),
      })
      .default({ bindAddress: "0.0.0.0", port: 80 }),
    app: z
      .strictObject({
        /** Port the backend listens on inside its container. */
        port: z.number().int().min(1).max(65_535).default(8000),
        /** Path the container health check and the deploy's health gate ask. */
        healthPath: z
          .string()
          .regex(/^\/[A-Za-z0-9._~/-]*$/, "expected a URL path")
          .default("/health"),
        /**
         * Paths that must answer 2xx (GET) inside the new container before the switch, and
         * through the proxy after it.
         */
        verifyPaths: z
          .array(z.string().regex(/^\/[A-Za-z0-9._~/-]*$/, "expected a URL path"))
          .min(1)
          .default(["/health", "/api/v1/health"]),
        /** Plain (non-secret) environment of the app, e.g. `APP_ENV: production`. */
        env: z.record(z.string(), z.string()).default({}),
        /**
         * Names of the app's own secrets, e.g. `[SENTRY_DSN, SMTP_PASSWORD]`; each value is
         * set with `pulumi config set --secret --path 'appSecrets.<NAME>'` and reaches the app
         * as the database password does (stdin, then the container's environment).
         */
        secrets: z.array(z.string()).default([]),
      })
      .default({
        port: 8000,
        healthPath: "/health",
        verifyPaths: ["/health", "/api/v1/health"],
        env: {},
        secrets: [],
      }),
    health: healthSchema.default({
      intervalSeconds: 5,
      probeTimeoutSeconds: 3,
      retries: 5,
      startPeriodSeconds: 20,
      timeoutSeconds: 180,
    }),
    /**
     * Seconds after the switch during which the new version must stay up (no exit, restart or
     * failed health probe) while the old one still runs; if it falls over, traffic goes back
     * to the old version and the deploy fails at step `watch`. 0 turns the watch off. Every
     * second of it is a second of the deploy's wall time (docs/benchmarks.md); a version that
     * crashes on its first real traffic does so within the default.
     */
    watchSeconds: z.number().int().min(0).max(600).default(5),
    /**
     * The most seconds the old version gets to finish the requests nginx already sent it
     * before it is stopped. The deploy stops it as soon as the proxy holds no request to it,
     * which under ordinary traffic takes well under a second.
     */
    drainSeconds: z.number().int().min(0).max(600).default(10),
    /** Seconds the old version gets after SIGTERM before it is killed. */
    stopTimeoutSeconds: z.number().int().min(1).max(600).default(30),
  })
  .superRefine((deploy, ctx) => {
    const seen = new Set<string>();
    deploy.hosts.forEach((host, index) => {
      if (seen.has(host.name)) {
        ctx.addIssue({
          code: "custom",
          path: ["hosts", index, "name"],
          message: `"${host.name}" is used by two hosts`,
        });
      }
      seen.add(host.name);
    });
    for (const { path, message } of accessoriesProblems(deploy)) {
      ctx.addIssue({ code: "custom", path, message });
    }
    for (const key of Object.keys(deploy.app.env)) {
      if (!/^[A-Z_][A-Z0-9_]*$/.test(key)) {
        ctx.addIssue({
          code: "custom",
          path: ["app", "env", key],
          message: `"${key}" is not an upper-case variable name (A-Z, 0-9, _)`,
        });
      }
      if (RESERVED_APP_ENV.includes(key)) {
        ctx.addIssue({
          code: "custom",
          path: ["app", "env", key],
          message: `${key} is set by the deploy from the stack's secrets; remove it here`,
        });
      }
    }
    const declared = new Set<string>();
    deploy.app.secrets.forEach((name, index) => {
      const path = ["app", "secrets", index];
      const reason = !/^[A-Z_][A-Z0-9_]*$/.test(name)
        ? `"${name}" is not an upper-case variable name (A-Z, 0-9, _)`
        : declared.has(name)
          ? `${name} is listed twice`
          : name in deploy.app.env
            ? `${name} is also in deploy.app.env; a name is either plain env or a secret`
            : reservedEnvReason(name);
      if (reason) ctx.addIssue({ code: "custom", path, message: reason });
      declared.add(name);
    });
    for (const key of ["migrationCommand", "migrationCheckCommand"] as const) {
      if (deploy[key].some((word) => /[\n\0]/.test(word))) {
        ctx.addIssue({ code: "custom", path: [key], message: "must not contain newlines" });
      }
    }
  });

/**
 * Why the hosts and `accessories` cannot work together: several hosts each running their own
 * database (the users' data would split between them), an accessories host that is not in
 * `hosts` or that leaves no app host, and settings of one kind of accessories given to the other.
 */
function accessoriesProblems(deploy: {
  hosts: readonly { name: string }[];
  accessories?: DeployAccessories | undefined;
}): { path: (string | number)[]; message: string }[] {
  const names = deploy.hosts.map((h) => h.name);
  const accessories = deploy.accessories;
  if (accessories === undefined) {
    return names.length > 1
      ? [
          {
            path: ["hosts"],
            message: `${names.length} hosts (${names.join(", ")}) would each run their own PostgreSQL and Redis, and the users' data would split between them: name the host that runs them in deploy.accessories.host, with the private address the app hosts reach it on, or set deploy.accessories.external for a managed database (docs/scaling.md)`,
          },
        ]
      : [];
  }
  const problems: { path: (string | number)[]; message: string }[] = [];
  const only = (key: keyof DeployAccessories, kind: string) => {
    if (accessories[key] !== undefined) {
      problems.push({ path: ["accessories", key], message: `goes only with ${kind}` });
    }
  };
  if (accessories.external) {
    if (accessories.host !== undefined) {
      problems.push({
        path: ["accessories", "host"],
        message:
          "an external database and an accessories host exclude each other; keep one of external and host",
      });
    }
    only("privateAddress", "accessories.host");
    only("postgresPort", "accessories.host");
    only("redisPort", "accessories.host");
    return problems;
  }
  only("backup", "accessories.external");
  const { host } = accessories;
  if (host === undefined) {
    problems.push({
      path: ["accessories"],
      message:
        "set host (the host of deploy.hosts that runs PostgreSQL and Redis) with privateAddress, or external: true for a managed database",
    });
    return problems;
  }
  if (accessories.privateAddress === undefined) {
    problems.push({
      path: ["accessories", "privateAddress"],
      message: `is required with accessories.host: the address the app hosts reach ${host} on`,
    });
  }
  if (!names.includes(host)) {
    problems.push({
      path: ["accessories", "host"],
      message: `"${host}" is not a host of deploy.hosts (${names.join(", ")})`,
    });
  } else if (names.length < 2) {
    problems.push({
      path: ["accessories", "host"],
      message: `"${host}" is the only host: it would run the database and no app; add the app hosts to deploy.hosts, or remove deploy.accessories to run everything on one host`,
    });
  }
  return problems;
}

/** The `deploy` section as validated: `image.tag` may still be unset. */
export type DeployConfigInput = z.infer<typeof deployConfigSchema>;

/** The image a deploy runs, once resolved (`src/deploy/image.ts`): always with a tag. */
export interface DeployImage {
  readonly repository: string;
  readonly tag: string;
  readonly digest?: string;
}

/** The `deploy` section with its image resolved: what the deploy builders work from. */
export type DeployConfig = Omit<DeployConfigInput, "image"> & { readonly image: DeployImage };
export type DeployHost = DeployConfigInput["hosts"][number];
export type DeployAccessories = z.infer<typeof accessoriesSchema>;

/** Accessories on a host of the stack, with their defaults filled in. */
export interface HostAccessories {
  readonly kind: "host";
  readonly host: string;
  readonly privateAddress: string;
  readonly postgresPort: number;
  readonly redisPort: number;
}

/** An external database and Redis (`databaseUrl`, `redisUrl`). */
export interface ExternalAccessories {
  readonly kind: "external";
  readonly backup: "pg_dump" | "provider";
}

/** The `accessories` section as the deploy uses it (validated: one kind or the other). */
export function accessoriesOf(
  deploy: Pick<DeployConfigInput, "accessories">,
): HostAccessories | ExternalAccessories | undefined {
  const a = deploy.accessories;
  if (a === undefined) return undefined;
  if (a.external) return { kind: "external", backup: a.backup ?? "pg_dump" };
  return {
    kind: "host",
    host: a.host ?? "",
    privateAddress: a.privateAddress ?? "",
    postgresPort: a.postgresPort ?? 5432,
    redisPort: a.redisPort ?? 6379,
  };
}

/** The hosts that run the app: all of them, except the accessories host. */
export function appHosts(deploy: Pick<DeployConfigInput, "hosts" | "accessories">): DeployHost[] {
  const a = accessoriesOf(deploy);
  return deploy.hosts.filter((h) => a?.kind !== "host" || h.name !== a.host);
}

/** The section with the given image (the program resolves it; tests pass it directly). */
export function withDeployImage(deploy: DeployConfigInput, image: DeployImage): DeployConfig {
  return { ...deploy, image };
}

/**
 * Secrets of the deploy. They reach a host only as dotenv lines on the deploy command's stdin,
 * never in a command string or a copied file.
 */
export const deploySecretKeys: readonly SecretKeySpec[] = [
  {
    key: "sshPrivateKey",
    description:
      "OpenSSH private key of the deploy user (ssh-keygen -t ed25519); its public key is in ~/.ssh/authorized_keys of that user on every host",
    requiredWhen: () => true,
  },
  {
    key: "postgresPassword",
    description:
      "Password of the app's PostgreSQL role; a changed one is put in place by the next deploy, with no failed request (npm run ops -- rotate-db-password; docs/operations.md); not used with an external database",
    requiredWhen: ({ externalDatabase }) => externalDatabase !== true,
  },
  {
    key: "jwtSecretKey",
    description: "JWT_SECRET_KEY of the backend (e.g. `openssl rand -hex 32`)",
    requiredWhen: () => true,
  },
  {
    key: "databaseUrl",
    description:
      "With deploy.accessories.external: the app's DATABASE_URL in its driver's form (e.g. postgresql+asyncpg://user:password@host:5432/name), password percent-encoded",
    requiredWhen: ({ externalDatabase }) => externalDatabase === true,
  },
  {
    key: "redisUrl",
    description:
      "With deploy.accessories.external: the app's REDIS_URL (e.g. rediss://:password@host:6379/0)",
    requiredWhen: ({ externalDatabase }) => externalDatabase === true,
  },
  {
    key: "registryUsername",
    description:
      "User for pulling the backend image (ghcr.io: a GitHub user or bot); only with a private image, together with registryToken",
    requiredWhen: () => false,
  },
  {
    key: APP_SECRETS_KEY,
    description:
      "The app's own secrets, one per name in deploy.app.secrets (mail, storage, error reporting keys); they reach the app as the database password does",
    requiredWhen: ({ appSecretNames }) => (appSecretNames?.length ?? 0) > 0,
    names: ({ appSecretNames }) => appSecretNames ?? [],
  },
  {
    key: "registryToken",
    description:
      "Token for pulling the backend image (ghcr.io: a token with read:packages only); only with a private image, together with registryUsername",
    requiredWhen: () => false,
  },
];

/** The registry host of an image repository: its first path part when that names a host. */
export function registryOf(repository: string): string {
  const first = repository.split("/")[0] ?? "";
  const isHost =
    repository.includes("/") &&
    (first.includes(".") || first.includes(":") || first === "localhost");
  return isHost ? first : "docker.io";
}
