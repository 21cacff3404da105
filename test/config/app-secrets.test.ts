import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, test } from "node:test";
import { hostValues, RESERVED_ENV_NAMES, reservedEnvReason } from "../../src/config/host-values";
import { missingSecretsMessage } from "../../src/config/load";
import { decodeConfigMap } from "../../src/config/raw";
import { parseStackConfig, requiredSecretKeys } from "../../src/config/schema";
import { readStackFile } from "../../src/config/stack-file";
import { renderComposeFile } from "../../src/deploy/compose";
import { buildDeployScript, REMOTE_PARTS, remotePart } from "../../src/deploy/script";
import { deploySettings } from "../../src/deploy/settings";
import { REPO_ROOT } from "../support/program";

/** The committed staging values, with `deploy.app.secrets` and `appSecrets` as given. */
function staging(names: unknown, appSecrets?: Record<string, string>): Record<string, unknown> {
  const file = readStackFile(join(REPO_ROOT, "Pulumi.staging.yaml"));
  const secret = new Set(file.secretKeys);
  const values = structuredClone(
    decodeConfigMap(file.config, (key) => secret.has(key), file.file).values,
  ) as Record<string, Record<string, Record<string, unknown>>>;
  const deploy = values.deploy ?? {};
  deploy.app = { ...(deploy.app ?? {}), secrets: names };
  values.deploy = deploy;
  return appSecrets ? { ...values, appSecrets } : values;
}

function parse(values: Record<string, unknown>) {
  return parseStackConfig(values, { stack: "staging", secretKeys: new Set(["appSecrets"]) });
}

describe("the app's own secrets: one line in the stack file plus the value", () => {
  test("a declared secret with its value is valid, and reaches stdin, the compose file and the script", () => {
    const result = parse(staging(["SENTRY_DSN"], { SENTRY_DSN: "https://k@sentry.example/1" }));
    assert.ok(result.ok, result.ok ? "" : result.problems.join("\n"));
    const values = hostValues(result.config.deploy.app.secrets);
    assert.deepEqual(values.appKeys, ["DATABASE_URL", "JWT_SECRET_KEY", "SENTRY_DSN"]);
    assert.ok(values.maskedKeys.includes("SENTRY_DSN"));
    assert.ok(values.requiredKeys.includes("SENTRY_DSN"));
    const deploy = { ...result.config.deploy, image: { repository: "r/b", tag: "v1" } };
    assert.match(renderComposeFile("staging", deploy), /^ {6}- SENTRY_DSN$/m);
    const host = deploy.hosts[0];
    assert.ok(host);
    const input = {
      stack: "staging",
      host,
      deploy,
      release: { id: "0123456789ab", files: new Map([["docker-compose.yml", "services: {}\n"]]) },
    };
    assert.deepEqual(deploySettings(input).APP_SECRETS, values.appKeys);
    assert.match(
      buildDeployScript(input),
      /^ {2}APP_SECRETS=\(DATABASE_URL JWT_SECRET_KEY SENTRY_DSN\)$/m,
    );
  });

  test("names that cannot work are refused, one line each naming the key and the file", () => {
    const result = parse(
      staging(["sentry_dsn", "DATABASE_URL", "STACK", "DOCKER_HOST", "APP_ENV", "X", "X"]),
    );
    assert.ok(!result.ok);
    const lines = result.problems.join("\n");
    for (const expected of [
      /Pulumi\.staging\.yaml: clicky-delivery:deploy\.app\.secrets\[0\]: "sentry_dsn" is not an upper-case variable name/,
      /deploy\.app\.secrets\[1\]: DATABASE_URL is a name the deploy sets or uses itself/,
      /deploy\.app\.secrets\[2\]: STACK is a name the deploy sets or uses itself/,
      /deploy\.app\.secrets\[3\]: names starting with DOCKER_ are read by/,
      /deploy\.app\.secrets\[6\]: X is listed twice/,
    ]) {
      assert.match(lines, expected);
    }
  });

  test("a name both in deploy.app.env and deploy.app.secrets is refused", () => {
    const values = staging(["APP_ENV"]);
    const deploy = values.deploy as { app: { env: Record<string, string> } };
    deploy.app.env = { APP_ENV: "staging" };
    const result = parse(values);
    assert.ok(!result.ok);
    assert.match(result.problems.join("\n"), /APP_ENV is also in deploy\.app\.env/);
  });

  test("a value nobody declared, and a declared name without a value, are refused", () => {
    const result = parse(
      staging(["SENTRY_DSN", "SMTP_PASSWORD"], { SENTRY_DSN: "x", OLD_KEY: "y" }),
    );
    assert.ok(!result.ok);
    assert.deepEqual(result.problems, [
      "Pulumi.staging.yaml: clicky-delivery:appSecrets.OLD_KEY: is set, but deploy.app.secrets does not list OLD_KEY; list it there or remove it (pulumi config rm --path 'appSecrets.OLD_KEY')",
      "Pulumi.staging.yaml: clicky-delivery:appSecrets.SMTP_PASSWORD: is not set, but deploy.app.secrets lists it; run `pulumi config set --secret --path 'appSecrets.SMTP_PASSWORD' --stack staging`",
    ]);
  });

  test("without appSecrets at all, the missing-secrets message gives one command per name", () => {
    const result = parse(staging(["SENTRY_DSN", "SMTP_PASSWORD"]));
    assert.ok(result.ok, result.ok ? "" : result.problems.join("\n"));
    const unset = requiredSecretKeys(result.config).filter(
      (spec) => !result.secretKeysSet.includes(spec.key),
    );
    const message = missingSecretsMessage(unset, "staging", "Pulumi.staging.yaml", result.config);
    assert.ok(
      message.some((line) =>
        line.startsWith(
          "  pulumi config set --secret --path 'appSecrets.SENTRY_DSN' --stack staging",
        ),
      ),
    );
    assert.ok(message.some((line) => line.includes("'appSecrets.SMTP_PASSWORD'")));
  });
});

describe("the names a user may not take", () => {
  test("cover every readonly variable of the deploy script and every setting", () => {
    const scriptNames = new Set<string>();
    for (const part of REMOTE_PARTS) {
      for (const line of remotePart(part).split("\n")) {
        const m = /^\s*readonly ((?:[A-Z_][A-Z0-9_]*(?:=\S*)?\s*)+)$/.exec(line);
        for (const word of m?.[1]?.trim().split(/\s+/) ?? []) {
          scriptNames.add(word.replace(/=.*$/, ""));
        }
      }
    }
    assert.ok(scriptNames.has("RELEASE_DIR") && scriptNames.has("IMAGE"), [...scriptNames].join());
    const file = readStackFile(join(REPO_ROOT, "Pulumi.staging.yaml"));
    const parsed = parseStackConfig(decodeConfigMap(file.config, () => false, file.file).values, {
      stack: "staging",
    });
    assert.ok(parsed.ok);
    const deploy = { ...parsed.config.deploy, image: { repository: "r/b", tag: "v1" } };
    const host = deploy.hosts[0];
    assert.ok(host);
    const settings = Object.keys(
      deploySettings({
        stack: "staging",
        host,
        deploy,
        release: { id: "0123456789ab", files: new Map([["docker-compose.yml", "services: {}\n"]]) },
      }),
    );
    for (const name of [...scriptNames, ...settings]) {
      assert.ok(RESERVED_ENV_NAMES.includes(name), `${name} is not in RESERVED_ENV_NAMES`);
    }
    assert.equal(reservedEnvReason("SENTRY_DSN"), undefined);
  });
});
