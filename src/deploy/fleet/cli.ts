/**
 * The rollout command of a fleet (`deploy.accessories`): Pulumi's local command runs it with
 * the plan in `CLICKY_FLEET_PLAN` and the secrets as JSON on stdin (`./component.ts`), from the
 * project directory. Exit 0 when every app host serves the new version, else 1.
 */
import { text } from "node:stream/consumers";
import { PLAN_VARIABLE } from "./plan";
import { type RolloutPlan, type RolloutSecrets, rollout, sshLock, sshRunner } from "./rollout";

async function main(): Promise<number> {
  const planText = process.env[PLAN_VARIABLE];
  if (!planText) {
    process.stderr.write(`rollout: ${PLAN_VARIABLE} is not set; nothing was changed\n`);
    return 2;
  }
  const plan = JSON.parse(planText) as RolloutPlan;
  const secrets = JSON.parse(await text(process.stdin)) as RolloutSecrets;
  const credentials = { kind: "key", privateKey: secrets.privateKey } as const;
  const result = await rollout(
    plan,
    secrets,
    {
      out: (line) => process.stdout.write(`${line}\n`),
      err: (line) => process.stderr.write(`${line}\n`),
    },
    { run: sshRunner(credentials), lock: sshLock(credentials) },
  );
  for (const line of result.summary) process.stdout.write(`  ${line}\n`);
  return result.ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`rollout FAILED: ${(e as Error).message}\n`);
    process.exit(1);
  },
);
