/**
 * The floor of an upgrade on the bench's host: what no deploy of a new version can skip, measured
 * in the same run as the deploys, on our project, under the same load. Three parts, each timed on the
 * host by the script itself (`date +%s.%N` marks; the SSH connection is not counted):
 *
 * 1. `docker pull` of the new image (already on the host, or removed first to measure a real
 *    pull of a larger image);
 * 2. `docker run` of the new image on the project's network, with the serving slot's app env
 *    (so it reaches PostgreSQL), until its first passing health probe (`curl -fsS` of
 *    `/health` every 0.1 s);
 * 3. one proxy switch as our deploy does it: the routing file that nginx reads per request
 *    replaced by one atomic rename (no reload), until the proxy's first answer from the new
 *    container (probed back to back).
 *
 * Afterwards the routing file is put back as it was and the container removed: the project
 * serves as before, and our next deploy finds the slot it left.
 */

/** How the floor reaches our project on the host. */
export interface FloorTarget {
  /** Our project's directory on the host (`deploy.appDir`). */
  readonly appDir: string;
  /** Our compose project (`deploy.composeProject`); its network is `<project>_default`. */
  readonly project: string;
  /** The proxy's published port on the host's loopback. */
  readonly proxyPort: number;
  /** The app's port in its container. */
  readonly appPort: number;
  /** The new version's image, pinned (`repository@sha256:...`). */
  readonly image: string;
  readonly registry: { readonly address: string; readonly user: string };
}

/** The slot name the floor's container answers as (the proxy's `X-Clicky-Slot` header). */
export const FLOOR_SLOT = "floor";

/** Seconds between two health probes of the floor's container. */
export const FLOOR_PROBE_INTERVAL_SECONDS = 0.1;

/**
 * The floor's script, run over SSH as the deploy user with the registry password on stdin
 * (the login is not timed). It prints `floor-mark <part> <epoch seconds>` for `start`, `pull`,
 * `healthy` and `switched`, and exits non-zero when a part does not finish within 120 s.
 */
export function floorScript(t: FloorTarget): string {
  const name = `${t.project}-bench-floor`;
  return `set -euo pipefail
cd ${t.appDir}
work="$(mktemp -d)"
cleanup() {
  if [[ -f "$work/routing.before" ]]; then cp -p "$work/routing.before" proxy/routing.restore && mv -f proxy/routing.restore proxy/routing; fi
  docker rm -f ${name} >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
export DOCKER_CONFIG="$work/docker"
mkdir -p -m 700 "$DOCKER_CONFIG"
docker login --username ${t.registry.user} --password-stdin ${t.registry.address} >/dev/null
docker rm -f ${name} >/dev/null 2>&1 || true
slot="$(awk '$0 !~ /^#/ && NF { print $1; exit }' proxy/routing)"
[[ -n $slot ]] || { echo "the proxy routes to no slot" >&2; exit 1; }
cp -p proxy/routing "$work/routing.before"
mark() { printf 'floor-mark %s %s\\n' "$1" "$(date +%s.%N)"; }
deadline() { (( $(date +%s) < $1 )) || { echo "floor: $2 took more than 120 s" >&2; exit 1; }; }
mark start
docker pull --quiet ${t.image} >/dev/null
mark pull
docker run -d --name ${name} --network ${t.project}_default --network-alias backend-${FLOOR_SLOT} --env-file "env/$slot.env" ${t.image} >/dev/null
addr="$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' ${name} | awk '{ print $1 }')"
limit=$(( $(date +%s) + 120 ))
until curl -fsS -o /dev/null --max-time 1 "http://$addr:${t.appPort}/health" 2>/dev/null; do deadline $limit "the first passing health probe"; sleep ${FLOOR_PROBE_INTERVAL_SECONDS}; done
mark healthy
printf '# The bench floor'"'"'s switch\\n%s backend-%s:%s %s:%s\\n' ${FLOOR_SLOT} ${FLOOR_SLOT} ${t.appPort} "$addr" ${t.appPort} >proxy/routing.floor
chmod 644 proxy/routing.floor
mv -f proxy/routing.floor proxy/routing
answered_by() { { curl -sS -o /dev/null -D - --max-time 1 "http://127.0.0.1:${t.proxyPort}/health" 2>/dev/null || true; } | tr -d '\r' | sed -n 's/^[Xx]-[Cc]licky-[Ss]lot: *//p'; }
limit=$(( $(date +%s) + 120 ))
until [[ "$(answered_by)" == ${FLOOR_SLOT} ]]; do deadline $limit "the proxy's first answer from the new container"; done
mark switched
`;
}

/** The parts of one floor measurement, seconds. */
export interface FloorParts {
  readonly pullSeconds: number;
  readonly healthySeconds: number;
  readonly switchSeconds: number;
  readonly totalSeconds: number;
}

/**
 * The parts from the script's output, e.g. marks at 10.0, 10.2, 11.5 and 11.6 give a pull of
 * 0.2 s, 1.3 s until healthy, a switch of 0.1 s and 1.6 s in all. Throws naming a missing mark.
 */
export function parseFloorOutput(stdout: string): FloorParts {
  const marks = new Map<string, number>();
  for (const m of stdout.matchAll(/^floor-mark (\w+) ([\d.]+)$/gm)) {
    if (m[1] && m[2]) marks.set(m[1], Number(m[2]));
  }
  const at = (name: string): number => {
    const value = marks.get(name);
    if (value === undefined) throw new Error(`the floor's output has no "${name}" mark`);
    return value;
  };
  const round = (s: number) => Math.round(s * 1000) / 1000;
  const start = at("start");
  const pull = at("pull");
  const healthy = at("healthy");
  const switched = at("switched");
  return {
    pullSeconds: round(pull - start),
    healthySeconds: round(healthy - pull),
    switchSeconds: round(switched - healthy),
    totalSeconds: round(switched - start),
  };
}
