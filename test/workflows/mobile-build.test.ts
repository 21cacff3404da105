import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { parse } from "yaml";
import { planWorkflows } from "../../src/workflows";
import { tools } from "../../src/workflows/actions";
import { SUBMIT_PROFILE_VARIABLES } from "../../src/workflows/pipelines/mobile";
import { committedValues, hasJq, runWithStubs, stackConfig } from "../support/workflows";

/**
 * The release build steps of `mobile-build.yml`, run for real with bash: `npx` is a stand-in
 * for the pinned EAS CLI that records its arguments and, as EAS CLI does when it resolves the
 * submit profile, reads the key file that the profile's `$VARIABLE` names.
 */
type Step = { name: string; run?: string; env?: Record<string, string> };
type Doc = { jobs: Record<string, { steps: Step[] }> };

const NO_JQ = !hasJq() && process.env.CI !== "true" && "jq is not installed here";
const P8 =
  "-----BEGIN PRIVATE KEY-----\nMIGTAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBHkwdwIBAQQg\n-----END PRIVATE KEY-----";
const SERVICE_ACCOUNT = JSON.stringify({
  type: "service_account",
  project_id: "clicky",
  private_key: "-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n",
  client_email: "uploader@clicky.iam.gserviceaccount.com",
});

function buildStep(config = stackConfig("staging"), job: string): string {
  const file = planWorkflows(config).files.find((f) => f.path.endsWith("/mobile-build.yml"));
  const doc = parse(file?.content ?? "") as Doc;
  const run = doc.jobs[job]?.steps.at(-1)?.run;
  assert.ok(run, `no build step in ${job}`);
  return run;
}

/** Records the arguments, the key file's mode and content, and whether the variables are set. */
const EAS_STUB = `[[ "$1 $2" == "--yes eas-cli@${tools.easCli}" ]] || exit 2
shift 2
{
  echo "args: $*"
  for name in ${[...SUBMIT_PROFILE_VARIABLES.ios, ...SUBMIT_PROFILE_VARIABLES.android].join(" ")}; do
    echo "$name=\${!name:-}"
  done
  path=\${ASC_API_KEY_PATH:-\${GOOGLE_SERVICE_ACCOUNT_KEY_PATH:-}}
  if [[ -n "$path" ]]; then
    echo "mode: $(stat -c %a "$path")"
    echo "content-begin"
    cat "$path"
    echo "content-end"
  fi
} > "$STUB_LOG"`;

function build(job: string, env: Record<string, string>, config?: ReturnType<typeof stackConfig>) {
  const r = runWithStubs(buildStep(config, job), { npx: EAS_STUB }, { EXPO_TOKEN: "e", ...env });
  const logPath = join(r.dir, ".stub-log");
  return { ...r, log: existsSync(logPath) ? readFileSync(logPath, "utf8") : "" };
}

const IOS = {
  ASC_API_KEY_P8: P8,
  ASC_API_KEY_ID: "AB12CD34EF",
  ASC_API_KEY_ISSUER_ID: "69a6de7a-1234-47e3-e053-5b8c7c11a4d1",
};

describe("release builds uploaded to the stores", { skip: NO_JQ }, () => {
  test("iOS: the key is a file only the runner can read, named for the submit profile, gone after", () => {
    const r = build("build-ios", IOS);
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.log,
      /^args: build --platform ios --profile production --non-interactive --auto-submit-with-profile production$/m,
    );
    assert.match(r.log, /^mode: 600$/m);
    assert.ok(r.log.includes(`content-begin\n${P8}\ncontent-end`), r.log);
    assert.match(r.log, new RegExp(`^ASC_API_KEY_PATH=${r.dir}/asc-api-key\\.p8$`, "m"));
    assert.match(r.log, /^ASC_API_KEY_ID=AB12CD34EF$/m);
    assert.equal(existsSync(join(r.dir, "asc-api-key.p8")), false, "removed when the step ends");
    assert.ok(!`${r.stdout}${r.stderr}`.includes("MIGTAgEAMBMG"), "the key is never printed");
  });

  test("Android: the service account key, the same way", () => {
    const r = build("build-android", { GOOGLE_SERVICE_ACCOUNT_KEY: SERVICE_ACCOUNT });
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.log,
      /^args: build --platform android .* --auto-submit-with-profile production$/m,
    );
    assert.match(r.log, /^mode: 600$/m);
    assert.ok(r.log.includes(SERVICE_ACCOUNT), r.log);
    assert.match(r.log, /^ASC_API_KEY_PATH=$/m, "the Android job has no App Store key");
    assert.equal(existsSync(join(r.dir, "google-service-account.json")), false);
  });

  for (const [what, job, env, error] of [
    [
      "a p8 that is not a key",
      "build-ios",
      { ...IOS, ASC_API_KEY_P8: "hunter2-not-a-key" },
      /ASC_API_KEY_P8 is not/,
    ],
    [
      "a Key ID with spaces",
      "build-ios",
      { ...IOS, ASC_API_KEY_ID: "AB12 CD34" },
      /ASC_API_KEY_ID is not/,
    ],
    [
      "an Issuer ID that is not a UUID",
      "build-ios",
      { ...IOS, ASC_API_KEY_ISSUER_ID: "issuer" },
      /ASC_API_KEY_ISSUER_ID is not/,
    ],
    [
      "a service account key that is not JSON",
      "build-android",
      { GOOGLE_SERVICE_ACCOUNT_KEY: "hunter2-not-json" },
      /GOOGLE_SERVICE_ACCOUNT_KEY is not a Google service account JSON key/,
    ],
    [
      "a JSON key of another kind",
      "build-android",
      { GOOGLE_SERVICE_ACCOUNT_KEY: '{"type":"authorized_user","client_secret":"hunter2"}' },
      /GOOGLE_SERVICE_ACCOUNT_KEY is not/,
    ],
  ] as const) {
    test(`${what}: refused before the build starts, without printing it`, () => {
      const r = build(job, env);
      assert.equal(r.status, 1);
      assert.match(r.stdout, error);
      assert.equal(r.log, "", "EAS CLI never ran");
      assert.ok(!`${r.stdout}${r.stderr}`.includes("hunter2"), "the value is never printed");
    });
  }

  test("a submit profile of its own name is used when configured", () => {
    const values = committedValues("staging");
    const config = stackConfig("staging", {
      workflows: {
        ...(values.workflows as object),
        mobile: { buildProfile: "release", submitProfile: "stores" },
      },
    });
    const r = build("build-ios", IOS, config);
    assert.match(r.log, /--profile release --non-interactive --auto-submit-with-profile stores$/m);
  });

  test("with submit off, the build step only builds, and reads no store key", () => {
    const values = committedValues("staging");
    const config = stackConfig("staging", {
      workflows: { ...(values.workflows as object), mobile: { submit: false } },
    });
    const r = build("build-ios", {}, config);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.log, /^args: build --platform ios --profile production --non-interactive$/m);
  });
});
