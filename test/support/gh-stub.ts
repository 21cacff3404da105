/**
 * A stand-in for `gh api` in scripts run by `runWithStubs`: it records each path it is asked
 * for (one line per call in `$STUB_LOG`), answers with the JSON file {@link ghFixture} names
 * for that path (the query string left out), and applies the script's `--jq` filter with jq
 * (`-r`, as gh prints strings raw). A path with no file fails like gh on a 404.
 */
export const GH_API_STUB = `[[ "$1" == api ]] || { echo "gh stub: only 'gh api'" >&2; exit 2; }
shift
path=""
filter=""
while (($# > 0)); do
  case "$1" in
    -X) shift 2 ;;
    -f) echo "$2" >> "$STUB_LOG.fields"; shift 2 ;;
    --jq) filter=$2; shift 2 ;;
    *) path=$1; shift ;;
  esac
done
echo "$path" >> "$STUB_LOG"
file="gh/$(printf '%s' "\${path%%\\?*}" | tr '/' '_').json"
if [[ ! -f "$file" ]]; then
  echo "gh: Not Found (HTTP 404): $path" >&2
  exit 1
fi
if [[ -n "$filter" ]]; then jq -r "$filter" "$file"; else cat "$file"; fi`;

/** Where {@link GH_API_STUB} looks for the answer to `path` (relative to the script's folder). */
export function ghFixture(path: string): string {
  return `gh/${path.replaceAll("/", "_")}.json`;
}
