// biome-ignore-all lint/suspicious/noTemplateCurlyInString: expected strings are bash and compose, where ${...} is their syntax
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  compose,
  composeEnsureRunning,
  composeRunOnce,
  composeStart,
  curlThroughProxy,
  dockerExec,
  dockerImagePresent,
  dockerInspect,
  dockerLogin,
  dockerPull,
  dockerRemove,
  dockerStop,
  nginxCheck,
  nginxReload,
  nginxTest,
  nginxWorkerPids,
  pgDatabaseSize,
  pgDumpToDir,
  pidsAlive,
  serviceContainers,
  slotServiceOf,
} from "../../src/deploy/commands";
import { all, raw, render } from "../../src/deploy/shell";

describe("each command builder renders one exact command", () => {
  const cases: [string, string, string][] = [
    ["compose passes its arguments", render(compose("ps")), "compose ps"],
    [
      "a slot's service comes from a variable",
      render([slotServiceOf("NEW_SLOT")]),
      '"backend-$NEW_SLOT"',
    ],
    [
      "ensure-running never recreates",
      render(composeEnsureRunning("postgres", "redis")),
      "compose up -d --no-deps --no-recreate postgres redis",
    ],
    [
      "start creates one service alone",
      render(composeStart("proxy")),
      "compose up -d --no-deps proxy",
    ],
    [
      "a one-off run is removed, without deps or TTY",
      render(composeRunOnce(slotServiceOf("NEW_SLOT"), [all("MIGRATION_COMMAND")])),
      'compose run --rm --no-deps -T "backend-$NEW_SLOT" "${MIGRATION_COMMAND[@]}"',
    ],
    [
      "a service's containers come from the labels compose sets, one-off runs excluded",
      render(serviceContainers("PROJECT", "service")),
      'docker ps -aq --no-trunc --filter "label=com.docker.compose.project=$PROJECT" --filter "label=com.docker.compose.service=$service" --filter label=com.docker.compose.oneoff=False',
    ],
    [
      "exec has no TTY and quotes its command",
      render(dockerExec("cid", ["psql", "-c", "SELECT 1"])),
      `docker exec "$cid" psql -c 'SELECT 1'`,
    ],
    [
      "stop gives the configured grace",
      render(dockerStop("OLD_CID", "STOP_TIMEOUT")),
      'docker stop -t "$STOP_TIMEOUT" "$OLD_CID"',
    ],
    [
      "remove stops first and drops anonymous volumes",
      render(dockerRemove("cid")),
      'docker rm -f -v "$cid"',
    ],
    [
      "pg_dump writes the custom format straight into the backup dir, then reads it back",
      render(
        pgDumpToDir({
          name: "name",
          postgresContainer: "pg_cid",
          postgresImage: "pg_image",
          backupDir: "BACKUP_DIR",
          user: "DB_USER",
          database: "DB_NAME",
          compressionLevel: "LEVEL",
          file: "partial",
        }),
      ),
      `docker run --rm --name "$name" --network "container:$pg_cid" --user "$(id -u):$(id -g)" -e PGPASSWORD -v "$BACKUP_DIR:/backups" --entrypoint sh "$pg_image" -c 'pg_dump -h 127.0.0.1 -U "$1" -d "$2" -Fc -Z "$3" -f "/backups/$4" && pg_restore --list "/backups/$4"' sh "$DB_USER" "$DB_NAME" "$LEVEL" "$partial"`,
    ],
    [
      "database size",
      render(pgDatabaseSize("pg_cid", "DB_USER", "DB_NAME")),
      `docker exec "$pg_cid" psql -X -At -U "$DB_USER" -d "$DB_NAME" -c 'SELECT pg_database_size(current_database())'`,
    ],
    [
      "a candidate nginx configuration is checked in a throwaway container, read-only, offline",
      render(nginxCheck("image", "dir")),
      'docker run --rm --network none -v "$dir:/etc/nginx/conf.d:ro" --entrypoint nginx "$image" -t -q',
    ],
    ["nginx -t is quiet", render(nginxTest("PROXY_CID")), 'docker exec "$PROXY_CID" nginx -t -q'],
    [
      "nginx reloads gracefully",
      render(nginxReload("PROXY_CID")),
      'docker exec "$PROXY_CID" nginx -s reload',
    ],
    [
      "nginx's workers are found in /proc, with any shell",
      render(nginxWorkerPids("PROXY_CID")),
      `docker exec "$PROXY_CID" sh -c 'for f in /proc/[0-9]*/cmdline; do case "$(tr "\\000" " " <"$f" 2>/dev/null)" in "nginx: worker process"*) p=\${f#/proc/}; echo "\${p%/cmdline}" ;; esac; done'`,
    ],
    [
      "which pids still run",
      render(pidsAlive("PROXY_CID", "workers")),
      `docker exec "$PROXY_CID" sh -c 'for p in "$@"; do [ -e "/proc/$p" ] && echo "$p"; done; exit 0' sh "\${workers[@]}"`,
    ],
    [
      "docker inspect quotes its template",
      render(dockerInspect("{{.State.Status}} {{.RestartCount}}", "cid")),
      `docker inspect -f '{{.State.Status}} {{.RestartCount}}' "$cid"`,
    ],
    ["image presence", render(dockerImagePresent("IMAGE")), 'docker image inspect "$IMAGE"'],
    [
      "login reads the password on stdin, into a private config dir",
      render(dockerLogin("docker_config", "REGISTRY", "REGISTRY_USERNAME")),
      'DOCKER_CONFIG="$docker_config" docker login --username "$REGISTRY_USERNAME" --password-stdin "$REGISTRY"',
    ],
    [
      "pull uses that config dir",
      render(dockerPull("docker_config", "IMAGE")),
      'DOCKER_CONFIG="$docker_config" docker pull --quiet "$IMAGE"',
    ],
    [
      "curl keeps headers and prints the status",
      render(curlThroughProxy('"$url"', "HEADERS_FILE")),
      `curl -sS -o /dev/null --max-time 10 -D "$HEADERS_FILE" -w '%{http_code}' "$url"`,
    ],
  ];
  for (const [name, actual, expected] of cases) {
    test(name, () => assert.equal(actual, expected));
  }

  test("a literal token with spaces, quotes or non-ASCII text stays one word", () => {
    assert.equal(
      render(dockerExec("cid", ["psql", "-c", "SELECT 'café'", ""])),
      `docker exec "$cid" psql -c 'SELECT '\\''café'\\''' ''`,
    );
  });

  test("raw tokens are the only way to write shell code", () => {
    assert.equal(render(compose(raw("2>/dev/null"))), "compose 2>/dev/null");
    assert.equal(render(compose("2>/dev/null")), "compose '2>/dev/null'");
  });
});
