// The proxy's routing, for nginx's njs module (njs 0.7 and later; the official nginx images ship
// it). nginx calls route() for each request (the site's $clicky_route, src/deploy/compose.ts);
// it returns the first line of the routing file that is not a comment:
//
//   <slot> <name:port> <address:port> [<standby slot> <standby address:port>]
//
// The deploy script writes that file (render_routing, src/deploy/remote/helpers.sh) and renames
// it into place at each switch, so a switch is one atomic rename that the next request reads:
// nginx is not reloaded and no client connection is closed. No file (a proxy started before any
// switch) routes nowhere: the site answers 503.
const fs = require("fs");

const ROUTING_FILE = "/etc/nginx/conf.d/routing";

function route(_request) {
  let text;
  try {
    text = fs.readFileSync(ROUTING_FILE, "utf8");
  } catch (_e) {
    return "";
  }
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line !== "" && line.charAt(0) !== "#") {
      return line;
    }
  }
  return "";
}

export default { route: route };
