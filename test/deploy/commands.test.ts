// biome-ignore-all lint/suspicious/noTemplateCurlyInString: expected strings are bash and compose, where ${...} is their syntax
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  compose,
  composeContainerId,
  composeEnsureRunning,
  composeExec,
  composeRemove,
  composeRunOnce,
  composeStart,
  composeStop,
  curlThroughProxy,
  dockerImagePresent,
  dockerInspect,
  dockerLogin,
  dockerPull,
  nginxReload,
  nginxTest,
  pgDatabaseSize,
  pgDump,
  pgRestoreList,
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
      "remove stops first and drops anonymous volumes",
      render(composeRemove(slotServiceOf("1"))),
      'compose rm -f -s -v "backend-$1"',
    ],
    [
      "stop gives the configured grace",
      render(composeStop(slotServiceOf("OLD_SLOT"), "STOP_TIMEOUT")),
      'compose stop -t "$STOP_TIMEOUT" "backend-$OLD_SLOT"',
    ],
    ["container id", render(composeContainerId("postgres")), "compose ps -q postgres"],
    [
      "a one-off run is removed, without deps or TTY",
      render(composeRunOnce(slotServiceOf("NEW_SLOT"), [all("MIGRATION_COMMAND")])),
      'compose run --rm --no-deps -T "backend-$NEW_SLOT" "${MIGRATION_COMMAND[@]}"',
    ],
    [
      "exec has no TTY and quotes its command",
      render(composeExec("postgres", ["psql", "-c", "SELECT 1"])),
      "compose exec -T postgres psql -c 'SELECT 1'",
    ],
    [
      "pg_dump writes the custom format",
      render(pgDump("DB_USER", "DB_NAME")),
      'compose exec -T postgres pg_dump -U "$DB_USER" -d "$DB_NAME" -Fc',
    ],
    [
      "pg_restore lists a dump from stdin",
      render(pgRestoreList()),
      "compose exec -T postgres pg_restore --list",
    ],
    [
      "database size",
      render(pgDatabaseSize("DB_USER", "DB_NAME")),
      `compose exec -T postgres psql -X -At -U "$DB_USER" -d "$DB_NAME" -c 'SELECT pg_database_size(current_database())'`,
    ],
    ["nginx -t is quiet", render(nginxTest()), "compose exec -T proxy nginx -t -q"],
    ["nginx reloads gracefully", render(nginxReload()), "compose exec -T proxy nginx -s reload"],
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
      render(composeExec("postgres", ["psql", "-c", "SELECT 'café'", ""])),
      `compose exec -T postgres psql -c 'SELECT '\\''café'\\''' ''`,
    );
  });

  test("raw tokens are the only way to write shell code", () => {
    assert.equal(render(compose(raw("2>/dev/null"))), "compose 2>/dev/null");
    assert.equal(render(compose("2>/dev/null")), "compose '2>/dev/null'");
  });
});
