import pulumiSdkPackage from "@pulumi/pulumi/package.json";

/**
 * The lowest major Node.js version a semver range of `engines.node` admits, as `setup-node`
 * takes it. Each `||` alternative is read for its lower bound (`>=22`, `>22.1`, `^22.3.0`,
 * `~22`, `22.x`, `22`); an alternative with only upper bounds (`<24`) has no lower bound and
 * is refused, as is anything unreadable: a wrong guess here would put the program on a Node.js
 * its SDK does not support.
 *
 * @example minimumNodeMajor(">=22") // "22"
 * @example minimumNodeMajor("^20.17.0 || >=22.9.0") // "20"
 */
export function minimumNodeMajor(range: string): string {
  const majors = range.split("||").map((alternative) => {
    const lower = alternative
      .trim()
      .split(/\s+/)
      .map((comparator) => /^(>=|>|\^|~|=)?\s*v?(\d+)(\.(\d+|x|\*))*$/.exec(comparator))
      .filter((m) => m !== null)
      .map((m) => Number(m[2]));
    if (lower.length === 0) {
      throw new Error(
        `engines.node "${range}": no lower bound in "${alternative.trim()}"; expected e.g. ">=22"`,
      );
    }
    return Math.max(...lower);
  });
  return String(Math.min(...majors));
}

/**
 * The Node.js major the jobs that run this program set up: the minimum that the pinned
 * `@pulumi/pulumi` declares in `engines.node` (read from the installed package at render time,
 * so an SDK upgrade that needs a newer Node.js moves the workflows with it). The app's own
 * `workflows.nodeVersion` is for the mobile jobs; `pulumi up` on an older Node.js than the SDK
 * declares runs outside what the SDK is tested on.
 */
export const PROGRAM_NODE_VERSION: string = sdkNodeMajor(pulumiSdkPackage);

function sdkNodeMajor(pkg: { engines?: { node?: string } }): string {
  const range = pkg.engines?.node;
  if (range === undefined) throw new Error("@pulumi/pulumi/package.json declares no engines.node");
  return minimumNodeMajor(range);
}
