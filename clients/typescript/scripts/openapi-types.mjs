// openapi-types.mjs OUTPUT: writes the TypeScript types of the document the service serves at
// $COPCCA_BASE_URL/openapi.json to OUTPUT, with openapi-typescript (pinned in package.json).
import { writeFile } from "node:fs/promises";

import openapiTS, { astToString } from "openapi-typescript";

const [output] = process.argv.slice(2);
const base = process.env.COPCCA_BASE_URL;
if (!output || !base) {
  console.error("usage: COPCCA_BASE_URL=http://... node scripts/openapi-types.mjs OUTPUT");
  process.exit(2);
}
const answer = await fetch(`${base.replace(/\/+$/, "")}/openapi.json`);
if (!answer.ok) throw new Error(`GET /openapi.json: ${answer.status}`);
const doc = await answer.json();
// utoipa names operations after their handler functions, so ids repeat across paths (`create`,
// `list`, `get_one`); openapi-typescript would merge those into one wrong `operations` entry.
// Without ids, each path's operations are typed where they are.
for (const item of Object.values(doc.paths)) {
  for (const operation of Object.values(item)) {
    if (operation && typeof operation === "object") delete operation.operationId;
  }
}
// An object without properties (a problem's extension members, a template's vars) is
// `Record<string, unknown>`, not `Record<string, never>`.
const ast = await openapiTS(doc, { emptyObjectsUnknown: true });
const header =
  "// Generated from the served /openapi.json by clients/typescript/scripts/generate: do not edit.\n" +
  "// clients/typescript/scripts/check fails when it is stale.\n\n";
await writeFile(output, header + astToString(ast));
