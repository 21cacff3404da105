import { PolicyPack } from "@pulumi/policy";
import { policies } from "./policies";

/**
 * The policy pack `pulumi preview --policy-pack policy` loads: Pulumi's Node.js policy runner
 * requires this folder (package.json `main`), which starts the pack's gRPC server for the engine.
 * The policies themselves are plain data in `./policies.ts`.
 */
new PolicyPack("clicky-delivery-production-access", {
  description:
    "Who can read what (docs/security.md): a credential that can read or change production is readable only by jobs of an environment gated by production's reviewers, or of the drift environment, limited to the default branch.",
  enforcementLevel: "mandatory",
  policies: [...policies],
});
