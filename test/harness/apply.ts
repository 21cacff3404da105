import type { RenderedHost } from "../support/render";
import { copyOverSsh, runOverSsh } from "./ssh";
import type { Harness } from "./state";

/**
 * What runs before a host's deploy command, as Pulumi runs it: the prepare command, then the
 * copies (compose file, site, routing module, deploy script) over SFTP. `edit` changes a copied file's text on
 * the way (a fault test's hand edit); by default the files go as rendered.
 */
export async function prepareAndCopy(
  h: Harness,
  host: Pick<RenderedHost, "prepare" | "copies">,
  edit: (remotePath: string, text: string) => string = (_, text) => text,
): Promise<void> {
  const prepared = await runOverSsh(h, String(host.prepare.inputs.create));
  if (prepared.code !== 0) {
    throw new Error(
      `the prepare command failed (exit ${prepared.code}): ${prepared.stderr.trim()}`,
    );
  }
  await copyOverSsh(
    h,
    host.copies.map((c) => ({ remotePath: c.remotePath, content: edit(c.remotePath, c.text) })),
  );
}
