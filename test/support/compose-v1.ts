// Imported first by the `*-compose-v1` test files: the suites they import then deploy with
// docker-compose v1 (`deploy.compose: v1`), in an app directory and compose project of their own.
process.env.E2E_COMPOSE = "v1";
