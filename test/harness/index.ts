/**
 * The e2e harness, shared by the e2e suites and the bench: real SSH, real Docker engines, a
 * real registry, on this machine (DESIGN.md, "E2E harness"). One module per job:
 * - `state`: provisioning (provision.sh) and the per-checkout state, ports and credentials;
 * - `ssh`: remote commands and copies exactly as Pulumi's command provider performs them;
 * - `apply`: a host the program rendered, applied in Pulumi's order (prepare, copies, run);
 * - `local`, `docker`, `database`: commands on this machine, compose projects, PostgreSQL;
 * - `load`: the open-loop HTTP load generator and HTTP helpers;
 * - `hosts`: several hosts on this machine (namespaces with their own engine and sshd) and a
 *   front load balancer, for multi-host deploys.
 */
export * from "./apply";
export * from "./database";
export * from "./docker";
export * from "./hosts";
export * from "./load";
export * from "./local";
export * from "./ssh";
export * from "./state";
