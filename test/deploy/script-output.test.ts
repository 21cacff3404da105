import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { hostValues } from "../../src/config/host-values";
import { buildRunCommand, deployRunArgs, deployScriptPath } from "../../src/deploy/run-command";
import { buildDeployScript, remotePart } from "../../src/deploy/script";
import {
  LOG_TAIL_BYTES,
  LOG_TAIL_LINE_BYTES,
  LOG_TAIL_LINES,
  MASK,
} from "../../src/deploy/script-output";
import { databaseUrl } from "../../src/deploy/stdin";
import { parseDeploy } from "../support/deploy-config";
import { commandProviderError } from "../support/provider";
import { assertNoSecret, HOSTILE_SECRETS, type LeakCheck, secretForms } from "../support/secrets";

const root = mkdtempSync(join(tmpdir(), "clicky-output-"));
after(() => rmSync(root, { recursive: true, force: true }));

const DATABASE = { name: "clicky_db", user: "clicky", urlScheme: "postgresql+asyncpg" } as const;
const REGISTRY = { user: "ci-bot", token: "ghp_T0ken/with+plus=and:colon%" };

/** The deploy's stdin values, as the script holds them after reading stdin. */
const VALUES = {
  POSTGRES_PASSWORD: HOSTILE_SECRETS.postgresPassword,
  DATABASE_URL: databaseUrl(DATABASE, HOSTILE_SECRETS.postgresPassword),
  JWT_SECRET_KEY: HOSTILE_SECRETS.jwtSecretKey,
  REGISTRY_USERNAME: REGISTRY.user,
  REGISTRY_TOKEN: REGISTRY.token,
};

const { maskedKeys: MASKED_KEYS } = hostValues([]);

const LEAKS: LeakCheck[] = [
  { name: "the database password", value: VALUES.POSTGRES_PASSWORD },
  { name: "DATABASE_URL", value: VALUES.DATABASE_URL },
  { name: "the JWT key", value: VALUES.JWT_SECRET_KEY },
  { name: "the registry token", value: VALUES.REGISTRY_TOKEN },
  { name: "user:token", value: `${REGISTRY.user}:${REGISTRY.token}` },
];

/** Runs bash with the script's output functions, the secrets set as after stdin, fd 3 and 4 to files. */
function withOutputFunctions(body: string, dir: string) {
  mkdirSync(dir, { recursive: true });
  const program = [
    "set -euo pipefail",
    "export LC_ALL=C",
    "HOST_NAME=web-1 STEP=test",
    `RUN_LOG=${JSON.stringify(join(dir, "run"))}`,
    `MASKED_KEYS=(${MASKED_KEYS.join(" ")})`,
    "declare -A SECRETS=()",
    `for key in ${Object.keys(VALUES).join(" ")}; do SECRETS[$key]=\${!key}; done`,
    remotePart("output.sh"),
    "build_masks",
    `exec 3>>"$RUN_LOG.out" 4>>"$RUN_LOG.err" >>"$RUN_LOG.log"`,
    body,
  ].join("\n");
  const r = spawnSync("bash", ["-c", program], {
    encoding: "utf8",
    env: { ...process.env, ...VALUES },
  });
  assert.equal(r.status, 0, r.stderr);
  const read = (ext: string) => readFileSync(join(dir, `run.${ext}`), "utf8");
  return { out: read("out"), err: read("err"), log: read("log") };
}

describe("the first line of defence: nothing the script runs prints a secret", () => {
  const text = buildDeployScript({
    stack: "staging",
    host: { name: "web-1", host: "web-1.example.org", port: 22, user: "deploy" },
    deploy: parseDeploy({
      hosts: [{ name: "web-1", host: "web-1.example.org" }],
      image: { repository: "ghcr.io/o/r/backend", tag: "v1" },
    }),
    release: { id: "0123456789ab", files: new Map([["docker-compose.yml", "services: {}\n"]]) },
  });
  const code = text.split("\n").filter((line) => !/^\s*#/.test(line));

  /** Every line that touches a secret's value (`SECRETS[...]`), and why it prints nothing. */
  const SECRET_LINES: [RegExp, string][] = [
    [/^declare -gA SECRETS=\(\)$/, "empty before stdin"],
    [/^ {4}SECRETS\[\$key\]=\$\{line#\*=\}$/, "read_stdin stores a value"],
    [
      /^ {4}\[\[ -n \$\{SECRETS\[\$key\]:-\} \]\] \|\| fail "stdin: \$key is missing"$/,
      "names only",
    ],
    [/^ {2}if \[\[ -n \$\{SECRETS\[REGISTRY_USERNAME\]:-\} && -z /, "a test, no output"],
    [/^ {4}\[\[ -z \$\{SECRETS\[REGISTRY_USERNAME\]:-\} && -n /, "a test, no output"],
    [
      /^ {4}for key in "\$\{APP_SECRETS\[@\]\}"; do export "\$key=\$\{SECRETS\[\$key\]\}"; done$/,
      "env of one compose call, in a subshell",
    ],
    [/^ {2}for key in "\$\{MASKED_KEYS\[@\]\}"; do values\+=/, "build_masks, into MASKS"],
    [/^ {2}if \[\[ -n \$\{SECRETS\[REGISTRY_USERNAME\]:-\} \]\]; then$/, "a test"],
    [/^ {4}values\+=\("\$\{SECRETS\[REGISTRY_USERNAME\]\}:/, "build_masks, into MASKS"],
    [
      /^ {4}for key in "\$\{APP_SECRETS\[@\]\}"; do printf '%s\\n' "\$\{SECRETS\[\$key\]\}"; done$/,
      "the fingerprint, piped into sha256sum",
    ],
    [
      /^ {4}POSTGRES_PASSWORD="\$\{SECRETS\[POSTGRES_PASSWORD\]\}" compose up -d --no-deps --no-recreate postgres redis \|\| fail "could not start postgres and redis"$/,
      "env of one compose call",
    ],
    [
      /^ {4}PGPASSWORD="\$\{SECRETS\[POSTGRES_PASSWORD\]\}" exec docker run .* -e PGPASSWORD .*"\$partial"$/,
      "env of pg_dump",
    ],
    [
      /^ {4}if ! printf '%s' "\$\{SECRETS\[REGISTRY_TOKEN\]\}" \| DOCKER_CONFIG="\$docker_config" docker login --username "\$\{SECRETS\[REGISTRY_USERNAME\]\}" --password-stdin "\$REGISTRY" >"\$TMP_DIR\/login\.log" 2>&1; then$/,
      "stdin of docker login",
    ],
    [
      /^ {2}PGPASSWORD="\$\{SECRETS\[POSTGRES_PASSWORD\]\}" docker exec -e PGPASSWORD -e PGCONNECT_TIMEOUT=10 "\$PG_CID" sh -c '$/,
      "env of psql (in one sh -c); what it prints is ok, refused, or PostgreSQL's answer, which holds no password",
    ],
    [
      /^ {2}printf '%s\\n%s\\n' "\$\{SECRETS\[POSTGRES_PASSWORD\]\}" "\$\{SECRETS\[POSTGRES_PASSWORD\]\}" \|$/,
      "stdin of psql's \\password, whose output goes to /dev/null and a file of prompts",
    ],
    [
      /^ {2}for key in "\$\{APP_SECRETS\[@\]\}"; do printf '%s=%s\\n' "\$key" "\$\{SECRETS\[\$key\]\}"; done \| write_file "\$ENV_DIR\/\$NEW_SLOT\.env"$/,
      "the env file, 0600",
    ],
  ];

  test("only known lines touch a secret's value, none of them prints it", () => {
    const touching = code.filter((line) => /(^|[^_A-Z])SECRETS[[=]/.test(line));
    for (const line of touching) {
      assert.ok(
        SECRET_LINES.some(([pattern]) => pattern.test(line)),
        `a line touches a secret and is not known to print nothing: ${line}`,
      );
    }
    for (const [pattern, why] of SECRET_LINES) {
      assert.ok(
        code.some((line) => pattern.test(line)),
        `no line is ${why} any more: ${pattern}`,
      );
    }
  });

  test("never traces, never prints an environment, an env file or a compose config", () => {
    for (const line of code) {
      assert.doesNotMatch(
        line,
        /set -[a-wyz]*[xv]|xtrace|BASH_XTRACEFD|\bprintenv\b|declare -p|export -p/,
        line,
      );
      assert.doesNotMatch(line, /\benv\s*(\||$)|cat [^|]*(ENV_DIR|\.env|config\.json)/, line);
      if (/compose config|compose\("config"/.test(line)) assert.match(line, /config -q/, line);
      if (/docker (image )?inspect/.test(line)) {
        assert.match(
          line,
          /inspect -f '|inspect "\$\w+" >\/dev\/null 2>&1/,
          `docker inspect only with a template, or its output discarded: ${line}`,
        );
        assert.doesNotMatch(line, /\.Config\.Env|json \./, line);
      }
    }
  });

  test("only log and report write to the caller (fd 3 and 4)", () => {
    const writes = code.filter((line) => />&[34]\b/.test(line));
    const start = (name: string) => code.indexOf(`${name}() {`);
    const inside = (line: string, name: string) => {
      const from = start(name);
      const to = code.indexOf("}", from);
      return code.slice(from, to).includes(line);
    };
    assert.ok(writes.length >= 5);
    for (const line of writes) {
      assert.ok(
        inside(line, "log") || inside(line, "report") || inside(line, "report_log_tail"),
        line,
      );
    }
  });
});

describe("masking, the second line of defence", () => {
  test("replaces every form a tool could print each secret in", () => {
    const texts: string[] = [];
    for (const leak of LEAKS) {
      for (const form of secretForms(leak.value)) texts.push(`before ${form} after`);
      // Inside longer base64 text, at each offset: a docker config's auth, a base64 env dump.
      for (const prefix of ["", "a", "ab", "abc"]) {
        texts.push(Buffer.from(`${prefix}${leak.value}!`).toString("base64"));
        texts.push(Buffer.from(`${prefix}${leak.value}`).toString("base64url"));
      }
    }
    texts.push(
      `{"auths":{"ghcr.io":{"auth":"${Buffer.from(`${REGISTRY.user}:${REGISTRY.token}`).toString("base64")}"}}}`,
    );
    const input = join(root, "texts");
    writeFileSync(input, texts.map((t) => `${t}\0`).join(""));
    const { log } = withOutputFunctions(
      `while IFS= read -r -d '' t; do mask "$t"; printf '%s\\0' "$MASKED"; done <${JSON.stringify(input)}`,
      join(root, "forms"),
    );
    const masked = log.split("\0").slice(0, -1);
    assert.equal(masked.length, texts.length);
    assertNoSecret(masked.join("\n"), LEAKS, "masked text");
    masked.forEach((m, i) => {
      assert.ok(m.includes(MASK), `text ${i} was masked`);
      // Around the mask only what the text's other bytes decide: a few characters at most.
      if (/^[A-Za-z0-9+/=_-]+$/.test(texts[i] ?? "")) assert.ok(m.length - MASK.length <= 8, m);
    });
  });

  test("computes each form as Node's own encoders do, for any bytes (no program per secret)", () => {
    // Values of every length 1 to 40 from a fixed seed: printable ASCII, the characters the
    // encodings treat apart (!'()*~ space % + / =), and two- to four-byte UTF-8.
    const alphabet = [..."aZ09-._~!'()* %+/=:@\"\\<>&$`", "ü", "€", "😀", "\u00ff"];
    let seed = 12345;
    const next = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed;
    };
    const values = Array.from({ length: 120 }, (_, i) =>
      Array.from({ length: (i % 40) + 1 }, () => alphabet[next() % alphabet.length]).join(""),
    );
    const input = join(root, "values");
    writeFileSync(input, values.map((v) => `${v}\0`).join(""));
    const { log } = withOutputFunctions(
      `while IFS= read -r -d '' v; do secret_forms "$v"; printf '\\0'; done <${JSON.stringify(input)}`,
      join(root, "computed"),
    );
    const computed = log.split("\0").slice(0, -1);
    assert.equal(computed.length, values.length);
    values.forEach((value, i) => {
      const lines = new Set((computed[i] ?? "").split("\n"));
      for (const form of secretForms(value)) {
        assert.ok(lines.has(form), `value ${i} (${value.length} characters): form ${form}`);
      }
    });
  });

  test("also the forms bash and JSON quote them in", () => {
    const { log } = withOutputFunctions(
      `printf -v q '%q' "$JWT_SECRET_KEY"; mask "x $q y"; printf '%s\\n' "$MASKED"`,
      join(root, "quoted"),
    );
    assert.equal(log, `x ${MASK} y\n`);
    const json = JSON.stringify(VALUES.JWT_SECRET_KEY)
      .slice(1, -1)
      .replace(/[<>&]/g, (c) => `\\u00${c.charCodeAt(0).toString(16)}`);
    const r = withOutputFunctions(
      `mask ${JSON.stringify(`"key":"${json}"`).replaceAll("$", "\\$").replaceAll("`", "\\`")}; printf '%s\\n' "$MASKED"`,
      join(root, "json"),
    );
    assert.equal(r.log, `"key":"${MASK}"\n`);
  });
});

describe("what the script prints", () => {
  test("log: one masked line to this run's log and to the caller", () => {
    const r = withOutputFunctions(
      'STEP=migrate; log "running with $DATABASE_URL and $REGISTRY_USERNAME"',
      join(root, "log"),
    );
    const line = `[deploy web-1] migrate: running with ${MASK} and ci-bot\n`;
    assert.deepEqual(r, { out: line, err: "", log: line });
  });

  test("a failure report: the log's last lines, masked, plain and cut, then the reason", () => {
    const dir = join(root, "report");
    mkdirSync(dir, { recursive: true });
    const lines = Array.from({ length: 60 }, (_, i) => `detail line ${i}`);
    lines[45] = `psql: connecting to ${VALUES.DATABASE_URL} failed`;
    lines[50] = `\u001b[31mERROR\u001b[0m\tcolored\r`;
    lines[55] = "x".repeat(500);
    writeFileSync(join(dir, "run.log"), `${lines.join("\n")}\n`);
    const r = withOutputFunctions(
      'report_log_tail; report "deploy FAILED on web-1 (stack s) at step migrate: $JWT_SECRET_KEY"',
      dir,
    );
    const err = r.err.split("\n");
    assert.equal(
      err[0],
      `--- the last ${LOG_TAIL_LINES} lines of the log of this deploy on web-1, ${join(dir, "run.log")}:`,
    );
    assert.equal(err[1], "  detail line 20");
    assert.equal(err[26], `  psql: connecting to ${MASK} failed`);
    assert.equal(err[31], "  [31mERROR[0m colored");
    assert.equal(err[36], `  ${"x".repeat(LOG_TAIL_LINE_BYTES)}`);
    assert.equal(err[41], "---");
    assert.equal(err[42], `deploy FAILED on web-1 (stack s) at step migrate: ${MASK}`);
    assertNoSecret(r.err, LEAKS, "the report");
    assert.ok(r.log.endsWith(`at step migrate: ${MASK}\n`), "the reason is in the log too");
  });

  test("the excerpt keeps the newest lines that fit in its byte limit", () => {
    const dir = join(root, "long");
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, "run.log"),
      Array.from({ length: 40 }, (_, i) => `${i} ${"y".repeat(300)}\n`).join(""),
    );
    const r = withOutputFunctions("report_log_tail", dir);
    const shown = r.err.split("\n").slice(1, -2);
    assert.ok(shown.length < 40 && shown.length > 20, `${shown.length} lines`);
    assert.match(shown.at(-1) ?? "", /^ {2}39 y+$/);
    assert.ok(shown.join("\n").length <= LOG_TAIL_BYTES);
  });
});

describe("the deploy script, against a Docker that talks too much", () => {
  // A docker CLI that answers preflight, then fails to start PostgreSQL, printing the password
  // it was given and the DATABASE_URL, as a careless tool would; its login echoes the token.
  const encodedPassword = encodeURIComponent(VALUES.POSTGRES_PASSWORD);
  const fakeDocker = `#!/bin/bash
case "$*" in
  info | ps* | run* | "compose version" | *" config -q") exit 0 ;;
  login*)
    token="$(cat)"
    echo "Error response from daemon: token $token rejected; auth $(printf '%s' "$3:$token" | base64)" >&2
    exit 1 ;;
  *" up -d --no-deps --no-recreate postgres redis")
    echo "Creating clicky_postgres_1 with POSTGRES_PASSWORD=$POSTGRES_PASSWORD"
    echo "ERROR: postgresql://clicky:${encodedPassword}@postgres:5432 refused" >&2
    exit 1 ;;
esac
echo "unexpected: docker $*" >&2
exit 1
`;

  const appDir = join(root, "app");
  const deploy = parseDeploy({
    appDir,
    hosts: [{ name: "web-1", host: "web-1.example.org" }],
    image: { repository: "ghcr.io/o/r/backend", tag: "v1.2.3" },
  });
  const host = deploy.hosts[0];
  assert.ok(host);
  const releaseDir = join(appDir, "releases", "0123456789ab");
  const script = buildDeployScript({
    stack: "staging",
    host,
    deploy,
    release: { id: "0123456789ab", files: new Map([["docker-compose.yml", "services: {}\n"]]) },
  });
  const create = buildRunCommand(deployScriptPath(releaseDir, script), deployRunArgs(deploy));
  const stdin = `${Object.entries(VALUES)
    .map(([k, v]) => `${k}=${v}`)
    .join("\n")}\n`;

  test("prints progress and a masked report; the tool's words stay in the host's log", () => {
    for (const dir of ["state", "backups", "env", "proxy"]) {
      mkdirSync(join(appDir, dir), { recursive: true, mode: 0o700 });
    }
    mkdirSync(releaseDir, { recursive: true });
    writeFileSync(deployScriptPath(releaseDir, script), script);
    writeFileSync(join(releaseDir, "docker-compose.yml"), "services: {}\n");
    writeFileSync(join(releaseDir, "site.conf"), "server {}\n");
    writeFileSync(join(releaseDir, "routing.js"), "export default {};\n");
    const bin = join(root, "bin");
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, "docker"), fakeDocker, { mode: 0o755 });

    // As the provider runs it: the login shell gets `create` with -c, stdin is the dotenv lines.
    const r = spawnSync("sh", ["-c", create], {
      input: stdin,
      encoding: "utf8",
      timeout: 60_000,
      env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ""}` },
    });
    assert.equal(r.status, 1, r.stderr);
    const error = commandProviderError(create, { code: r.status }, r.stdout + r.stderr);

    for (const line of r.stdout.trimEnd().split("\n")) {
      assert.match(line, /^\[deploy web-1\] [a-z_]+: /, "stdout holds progress lines only");
    }
    // Where the time went: each step that ended, the one that failed, then the undo.
    assert.match(
      r.stdout,
      /\n\[deploy web-1\] infra: failed after \d+\.\d s in step infra; timings: lock \d+\.\d s, preflight \d+\.\d s, proxy_check \d+\.\d s, infra \d+\.\d s, undo \d+\.\d s\n$/,
    );
    assert.match(r.stderr, /^--- the last \d+ lines of the log of this deploy on web-1, /);
    assert.match(r.stderr, /Creating clicky_postgres_1 with POSTGRES_PASSWORD=\*\*\*/);
    assert.match(r.stderr, /ERROR: postgresql:\/\/clicky:\*\*\*@postgres:5432 refused/);
    assert.match(
      r.stderr,
      /\ndeploy FAILED on web-1 \(stack staging\) at step infra: could not start postgres and redis\nno previous version was serving on this host\nbackup taken before this deploy: none \(the deploy stopped before its backup was complete\)\n$/,
    );
    assertNoSecret(error, LEAKS, "the provider's error");
    assert.ok(error.length < 8192, `the error is ${error.length} bytes`);

    const logs = join(appDir, "logs");
    const log = readdirSync(logs).find((f) => f.endsWith(".log"));
    assert.ok(log);
    assert.ok(
      readFileSync(join(logs, log), "utf8").includes(
        `POSTGRES_PASSWORD=${VALUES.POSTGRES_PASSWORD}`,
      ),
      "the host's log keeps the tool's own words",
    );
  });
});

describe("the deploy script, when the Docker engine goes away mid-deploy", () => {
  // Docker answers preflight, then stops answering while the infra step starts PostgreSQL.
  const dir = join(root, "gone");
  const fakeDocker = `#!/bin/bash
case "$*" in
  info)
    if [ -e ${JSON.stringify(join(dir, "gone"))} ]; then
      echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?" >&2
      exit 1
    fi
    exit 0 ;;
  ps* | run* | "compose version" | *" config -q") exit 0 ;;
  *" up -d --no-deps --no-recreate postgres redis")
    touch ${JSON.stringify(join(dir, "gone"))}
    echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?" >&2
    exit 1 ;;
esac
exit 1
`;
  const appDir = join(dir, "app");
  const deploy = parseDeploy({
    appDir,
    hosts: [{ name: "web-1", host: "web-1.example.org" }],
    image: { repository: "ghcr.io/o/r/backend", tag: "v1.2.3" },
  });
  const host = deploy.hosts[0];
  assert.ok(host);
  const releaseDir = join(appDir, "releases", "0123456789ab");
  const script = buildDeployScript({
    stack: "staging",
    host,
    deploy,
    release: { id: "0123456789ab", files: new Map([["docker-compose.yml", "services: {}\n"]]) },
  });
  const create = buildRunCommand(deployScriptPath(releaseDir, script), deployRunArgs(deploy));

  test("names the engine as the cause and claims nothing about what serves", () => {
    for (const d of ["state", "backups", "env", "proxy"]) {
      mkdirSync(join(appDir, d), { recursive: true, mode: 0o700 });
    }
    mkdirSync(releaseDir, { recursive: true });
    writeFileSync(deployScriptPath(releaseDir, script), script);
    writeFileSync(join(releaseDir, "docker-compose.yml"), "services: {}\n");
    writeFileSync(join(releaseDir, "site.conf"), "server {}\n");
    writeFileSync(join(releaseDir, "routing.js"), "export default {};\n");
    const bin = join(dir, "bin");
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, "docker"), fakeDocker, { mode: 0o755 });
    const r = spawnSync("sh", ["-c", create], {
      input: `${Object.entries(VALUES)
        .map(([k, v]) => `${k}=${v}`)
        .join("\n")}\n`,
      encoding: "utf8",
      timeout: 60_000,
      env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ""}` },
    });
    assert.equal(r.status, 1, r.stderr);
    assert.match(
      r.stderr,
      /\ndeploy FAILED on web-1 \(stack staging\) at step infra: the Docker engine stopped answering \(Cannot connect to the Docker daemon at unix:\/\/\/var\/run\/docker.sock. Is the docker daemon running\?\); the step's own error: could not start postgres and redis\nwhat serves on this host is unknown while Docker does not answer: once it is back, docker ps and \S+\/state\/current show it, and the next deploy puts this release in place\n/,
    );
    assert.doesNotMatch(r.stderr, /keeps serving|no previous version was serving/);
  });
});
