// Bundle src/view.js (ext-apps App + d3) and src/view.css into ONE self-contained HTML file, no network needed.
// Usage: node build.mjs [OUTFILE]  (default: the copy shipped in the wheel). Same inputs -> same bytes.
import { build } from "esbuild";
import { readFile, writeFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const shipped = resolve(here, "../../src/itwin_insights_mcp/server/ui/report-view.html");
const out = resolve(process.argv[2] || shipped);

const bundle = await build({
  entryPoints: [resolve(here, "src/view.js")],
  bundle: true,
  format: "iife",
  minify: true,
  legalComments: "none",
  target: "es2020",
  platform: "browser",
  write: false,
  logLevel: "warning",
});
const script = bundle.outputFiles[0].text.replaceAll("</script", "<\\/script");
const style = (await readFile(resolve(here, "src/view.css"), "utf8")).replaceAll("</style", "<\\/style");
const template = await readFile(resolve(here, "src/view.html"), "utf8");
const html = template.replace("/*__STYLE__*/", () => style).replace("/*__SCRIPT__*/", () => script);
await writeFile(out, html);
console.error(`wrote ${out} (${html.length} bytes)`);
