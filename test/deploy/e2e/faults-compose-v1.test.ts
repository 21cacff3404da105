// The fault suite again, with docker-compose v1 (hosts installed before compose v2 still have it).
import "../../support/compose-v1";
import "./faults.suite";
