/** Compose projects on the harness's Docker engine: their containers, and cleaning one up whole. */
import path from "node:path";
import { runLocal } from "./local";
import type { Harness } from "./state";

/**
 * Names of the containers of a compose project (optionally one service), running or not,
 * found by the labels both docker compose v2 and docker-compose v1 set.
 */
export async function composeContainers(project: string, service?: string): Promise<string[]> {
  const args = [
    "ps",
    "-a",
    "--format",
    "{{.Names}}",
    "--filter",
    `label=com.docker.compose.project=${project}`,
  ];
  if (service) args.push("--filter", `label=com.docker.compose.service=${service}`);
  const r = await runLocal("docker", args);
  if (r.code !== 0) throw new Error(`docker ps: ${r.stderr.trim()}`);
  return r.stdout.split("\n").filter(Boolean).sort();
}

/**
 * Names of a project's one-off migration runs and checks (`<project>-migrate-…`,
 * `<project>-migcheck-…`, as the deploy names them), running or not.
 */
export async function migrationContainers(project: string): Promise<string[]> {
  const r = await runLocal("docker", [
    "ps",
    "-a",
    "--filter",
    `name=${project}-mig`,
    "--format",
    "{{.Names}}",
  ]);
  if (r.code !== 0) throw new Error(`docker ps: ${r.stderr.trim()}`);
  return r.stdout.split("\n").filter(Boolean).sort();
}

const PROJECT_RE = /^[a-z0-9][a-z0-9_-]*$/;
const PROTECTED_DIRS = new Set(
  [
    "/",
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/home",
    "/lib",
    "/lib64",
    "/opt",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/srv",
    "/sys",
    "/tmp",
    "/usr",
    "/var",
    "/work",
  ].map((d) => path.normalize(d)),
);

/**
 * Tears down a test's compose project so that the next scenario starts clean: removes its
 * containers, volumes and networks (found by compose labels, so it needs neither the compose
 * file nor the same compose variant) and deletes its app directory on the host. Refuses
 * project names and directories that could hit something that is not a test's.
 */
export async function cleanupProject(
  h: Harness,
  appDir: string,
  composeProjectName: string,
): Promise<void> {
  if (!PROJECT_RE.test(composeProjectName)) {
    throw new Error(
      `cleanupProject: invalid compose project name ${JSON.stringify(composeProjectName)}`,
    );
  }
  const dir = path.normalize(appDir);
  if (
    !path.isAbsolute(dir) ||
    PROTECTED_DIRS.has(dir) ||
    dir.split("/").filter(Boolean).length < 2
  ) {
    throw new Error(`cleanupProject: refusing to remove ${JSON.stringify(appDir)}`);
  }
  const label = `label=com.docker.compose.project=${composeProjectName}`;
  const list = async (args: string[]) => {
    const r = await runLocal("docker", args);
    if (r.code !== 0) throw new Error(`docker ${args.join(" ")}: ${r.stderr.trim()}`);
    return r.stdout.split("\n").filter(Boolean);
  };
  const containers = await list(["ps", "-aq", "--filter", label]);
  if (containers.length > 0) await runLocal("docker", ["rm", "-f", "-v", ...containers]);
  const volumes = await list(["volume", "ls", "-q", "--filter", label]);
  if (volumes.length > 0) await runLocal("docker", ["volume", "rm", "-f", ...volumes]);
  const networks = await list(["network", "ls", "-q", "--filter", label]);
  if (networks.length > 0) await runLocal("docker", ["network", "rm", ...networks]);
  const rm = await runLocal("rm", ["-rf", "--one-file-system", "--", dir]);
  if (rm.code !== 0) throw new Error(`cleanupProject: rm -rf ${dir}: ${rm.stderr.trim()}`);
  void h;
}
