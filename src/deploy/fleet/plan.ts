/** The environment variable that carries a rollout's plan to its command (`./cli.ts`). */
export const PLAN_VARIABLE = "CLICKY_FLEET_PLAN";
