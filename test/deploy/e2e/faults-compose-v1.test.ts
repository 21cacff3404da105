// The fault suite again, with docker-compose v1 (hosts installed before compose v2 still have it);
// it skips the scenarios that run no compose command the others do not (V2_ONLY).
import "../../support/compose-v1";
import "./faults.suite";
