/**
 * What the host probe (src/deploy/host-probe.ts) adds to a preview: the program run under
 * Pulumi's mocks as `pulumi preview` runs it, with the probe off and with it reading the
 * bench's deployed host over SSH, interleaved, plus the floor of any probe: an SSH connection
 * that runs `true`. One host; several hosts are read concurrently, one connection each.
 */
import { performance } from "node:perf_hooks";
import type { DeployHost } from "../../src/config/deploy";
import { sshProber } from "../../src/deploy/host-probe";
import type { Harness } from "../../test/harness";
import { runProgram } from "../../test/support/program";
import { SECRETS } from "../../test/support/stacks";

/** The probe's timings, each list in run order (milliseconds). */
export interface ProbeTimings {
  readonly previewWithoutProbeMs: number[];
  readonly previewWithProbeMs: number[];
  readonly sshFloorMs: number[];
}

export async function measureProbe(
  h: Harness,
  deploy: Record<string, unknown>,
  secrets: Record<string, string>,
  runs: number,
): Promise<ProbeTimings> {
  const out: ProbeTimings = { previewWithoutProbeMs: [], previewWithProbeMs: [], sshFloorMs: [] };
  const preview = async (probe: boolean) => {
    const started = performance.now();
    const run = await runProgram({
      stack: "staging",
      mode: "up",
      overrides: { deploy },
      secrets: { ...SECRETS, ...secrets },
      hostProber: probe ? sshProber : "off",
    });
    if (run.error) throw new Error(`the preview failed: ${String(run.error)}`);
    return performance.now() - started;
  };
  const host = (deploy.hosts as DeployHost[])[0];
  if (!host) throw new Error("the bench's stack has no host");
  // One of each first, not counted: module loading and the first connection's key exchange.
  await preview(false);
  await preview(true);
  for (let i = 0; i < runs; i++) {
    out.previewWithoutProbeMs.push(await preview(false));
    out.previewWithProbeMs.push(await preview(true));
    const started = performance.now();
    await sshProber({ host, privateKey: h.privateKey, script: "true" });
    out.sshFloorMs.push(performance.now() - started);
  }
  return out;
}
