// Validates an AsyncAPI document with the official parser (@asyncapi/parser): prints
// every diagnostic as `severity<TAB>code<TAB>path<TAB>message` and exits 1 when one is
// an error (severity 0) or the document did not parse. Used by tests/it/kit.rs.
import { readFileSync } from "node:fs";
import { Parser } from "@asyncapi/parser";

const file = process.argv[2];
const parser = new Parser();
const { document, diagnostics } = await parser.parse(readFileSync(file, "utf8"));
let errors = 0;
for (const d of diagnostics) {
  if (d.severity === 0) errors++;
  console.log(`${d.severity}\t${d.code}\t${(d.path || []).join(".")}\t${d.message}`);
}
if (!document || errors > 0) {
  console.log(`invalid: ${errors} error(s)`);
  process.exit(1);
}
console.log(`valid: AsyncAPI ${document.version()}, ${document.channels().length} channel(s), ${document.operations().length} operation(s)`);
