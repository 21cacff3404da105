// The fault suite with compose v2, the plugin hosts install today (faults-compose-v1.test.ts runs
// it again with docker-compose v1).
import "./faults.suite";
