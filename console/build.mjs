// Builds the staff console into trikchi/console/static (or the directory given): one script, one
// style sheet and the page, from console/src with esbuild, from the project's npm lockfile.
// `make console` runs it; tests/test_console.py checks that the committed files are what it makes.
import { build } from "esbuild";
import { copyFile, mkdir } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const outdir = resolve(process.argv[2] || join(root, "trikchi/console/static"));

await mkdir(outdir, { recursive: true });
await build({
  absWorkingDir: root,
  entryPoints: { console: "console/src/main.js" },
  bundle: true,
  minify: true,
  format: "esm",
  target: ["chrome109", "firefox115", "safari16"],
  charset: "utf8",
  legalComments: "eof",
  outdir,
  logLevel: "warning",
});
await copyFile(join(root, "console/src/index.html"), join(outdir, "index.html"));
