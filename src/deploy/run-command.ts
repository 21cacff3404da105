import { type DeployConfig, registryOf } from "../config/deploy";
import { contentHash } from "./compose";
import { imageReference } from "./script";
import { quote } from "./shell";

/**
 * What one deploy run changes from the last: the image and whether it migrates. They travel as
 * arguments on the run command's line, not inside the copied script, so the script file on the
 * host changes only with the program or the stack's config. That matters because a copy is
 * recorded even when the deploy after it fails: were the image in the file, the next run
 * without a tag (which goes back to the recorded image) would plan a new copy of it, where now
 * it plans nothing (see docs/deploy.md, "Which image runs").
 */
export interface DeployRunArgs {
  /** `repository@digest`, or `repository:tag` when no digest is known. */
  readonly image: string;
  readonly tag: string;
  /** The registry to log in to for a private image: `deploy.registry`, else the image's host. */
  readonly registry: string;
  readonly migrate: boolean;
}

/** The run arguments of a deploy section with its image resolved. */
export function deployRunArgs(deploy: DeployConfig): DeployRunArgs {
  return {
    image: imageReference(deploy.image),
    tag: deploy.image.tag,
    registry: deploy.registry ?? registryOf(deploy.image.repository),
    migrate: deploy.migrate,
  };
}

/**
 * Where the deploy script is copied on the host: in the release directory, named by its own
 * content hash. A file of that name is only ever written with the same bytes, so a new copy
 * (another config, a new program version) never rewrites a script that a detached deploy may
 * still be reading (bash reads a script as it goes; the provider's copy truncates and rewrites
 * in place, `copyController.go` `copyTextContent`).
 *
 * @example deployScriptPath("/opt/app/releases/0123456789ab", text) // "/opt/app/releases/0123456789ab/deploy-<16 hex>.sh"
 */
export function deployScriptPath(releaseDir: string, script: string): string {
  return `${releaseDir}/deploy-${contentHash([script]).slice(0, 16)}.sh`;
}

/**
 * The run command's `create`: one short line that runs the copied deploy script with this
 * run's arguments, the secrets coming on stdin.
 *
 * Why a line and not the script itself: the command provider reports a failed command as
 * `<err>: running "<create>":\n<all of its output>` (pulumi-command v1.2.1,
 * provider/pkg/provider/remote/commandOutputs.go `run`), and Pulumi Deployments puts that
 * error into GitHub Actions logs. With the ~30 KB script as `create`, every failure quoted all
 * of it; now it quotes this line, which holds no secret and names the image it deploys. `exec`
 * so that the login shell (any POSIX shell) hands the SSH session straight to bash.
 *
 * @example buildRunCommand("/opt/app/releases/r/deploy-h.sh", { image: "ghcr.io/o/b@sha256:…", tag: "v2", registry: "ghcr.io", migrate: true })
 * // "exec bash /opt/app/releases/r/deploy-h.sh image=ghcr.io/o/b@sha256:… tag=v2 registry=ghcr.io migrate=1"
 */
export function buildRunCommand(scriptPath: string, args: DeployRunArgs): string {
  return [
    "exec",
    "bash",
    scriptPath,
    `image=${args.image}`,
    `tag=${args.tag}`,
    `registry=${args.registry}`,
    `migrate=${args.migrate ? "1" : "0"}`,
  ]
    .map(quote)
    .join(" ");
}
