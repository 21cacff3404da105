import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parse } from "yaml";
import { planWorkflows } from "../../src/workflows";
import { withLogin } from "../support/program";
import { stackConfig } from "../support/workflows";

type Job = {
  environment?: { name: string };
  permissions?: Record<string, string>;
  steps: { uses?: string; with?: Record<string, string>; env?: Record<string, string> }[];
};

function jobsOf(auth: "oidc" | "tokens", deployMode?: string) {
  const config = stackConfig("staging", {
    ...withLogin("staging", auth),
    ...(deployMode ? { workflows: { deployMode } } : {}),
  });
  return planWorkflows(config).files.flatMap((f) =>
    Object.entries((parse(f.content) as { jobs: Record<string, Job> }).jobs).map(([id, job]) => ({
      where: `${f.path}: ${id}`,
      text: f.content,
      job,
    })),
  );
}

for (const mode of ["pulumi-deployments", "pulumi-up"]) {
  describe(`OIDC login (${mode})`, () => {
    const jobs = jobsOf("oidc", mode);
    const logins = jobs.flatMap(({ where, job }) =>
      job.steps
        .filter((s) => s.uses?.startsWith("pulumi/auth-actions@"))
        .map((s) => ({ where, job, with: s.with ?? {} })),
    );

    test("no Pulumi token is read from GitHub secrets", () => {
      for (const { where, text } of jobs) {
        assert.doesNotMatch(text, /secrets\.PULUMI_(ACCESS|DRIFT)_TOKEN/, where);
      }
    });

    test("each job that runs Pulumi logs in as its own environment's team, with id-token: write", () => {
      assert.deepEqual(logins.map((l) => [l.where, l.job.environment?.name, l.with.scope]).sort(), [
        [
          ".github/workflows/deploy-prod.yml: deploy",
          "production",
          "team:clicky-delivery-production",
        ],
        [".github/workflows/deploy-staging.yml: deploy", "staging", "team:clicky-delivery-staging"],
        [".github/workflows/drift.yml: drift", "drift", "team:clicky-delivery-drift"],
        [
          ".github/workflows/mobile-ota.yml: promote",
          "production",
          "team:clicky-delivery-production",
        ],
      ]);
      for (const l of logins) {
        assert.equal(l.job.permissions?.["id-token"], "write", l.where);
        assert.equal(l.with.organization, "clicky-foundation", l.where);
        assert.equal(l.with["requested-token-type"], "urn:pulumi:token-type:access_token:team");
      }
    });

    test("the action is pinned to a commit", () => {
      for (const { job } of logins) {
        const step = job.steps.find((s) => s.uses?.startsWith("pulumi/auth-actions@"));
        assert.match(step?.uses ?? "", /^pulumi\/auth-actions@[0-9a-f]{40}$/);
      }
    });

    test("no other job may mint an OIDC token", () => {
      const minting = jobs.filter(({ job }) => job.permissions?.["id-token"] === "write");
      assert.deepEqual(minting.map((j) => j.where).sort(), logins.map((l) => l.where).sort());
    });
  });
}

describe("stored tokens (the default)", () => {
  test("no job logs in with OIDC or may mint a token", () => {
    for (const { where, job } of jobsOf("tokens")) {
      assert.ok(!job.steps.some((s) => s.uses?.startsWith("pulumi/auth-actions@")), where);
      assert.equal(job.permissions?.["id-token"], undefined, where);
    }
  });
});
