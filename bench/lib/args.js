"use strict";
/**
 * The bench scripts' command line: `--name=value` gives a string, a bare `--flag` gives true.
 * Only the first `=` splits, so values may hold more (`--node-env=A=1,B=2`).
 */
function parseArgs(argv = process.argv.slice(2)) {
  return Object.fromEntries(
    argv.map((a) => {
      const arg = a.replace(/^--/, "");
      const eq = arg.indexOf("=");
      return eq === -1 ? [arg, true] : [arg.slice(0, eq), arg.slice(eq + 1)];
    }),
  );
}

module.exports = { parseArgs };
