// REST routes are part of the API, but `buf breaking` does not look inside
// custom options, so it misses a changed `google.api.http` route. This check
// does: every binding (verb, path, body, response_body) an RPC has in the
// snapshot must still be on that RPC. New bindings and new RPCs are fine.
//
// Usage: node scripts/check-api-routes.js SNAPSHOT.json CURRENT.json
// (images written by `buf build -o FILE#format=json`). Exits 1 on a finding.
'use strict';
const fs = require('fs');

const VERBS = ['get', 'put', 'post', 'delete', 'patch'];

// Returns Map "pkg.Service/Method" -> Set of binding keys.
function routesOf(imagePath) {
  const image = JSON.parse(fs.readFileSync(imagePath, 'utf8'));
  const routes = new Map();
  for (const file of image.file || []) {
    for (const service of file.service || []) {
      for (const method of service.method || []) {
        const name = `${file.package}.${service.name}/${method.name}`;
        const rule = (method.options || {})['[google.api.http]'];
        const keys = new Set();
        if (rule) {
          for (const r of [rule, ...(rule.additionalBindings || [])]) {
            keys.add(bindingKey(r));
          }
        }
        routes.set(name, keys);
      }
    }
  }
  return routes;
}

function bindingKey(rule) {
  let verb = VERBS.find((v) => rule[v] !== undefined);
  let path = verb ? rule[verb] : undefined;
  if (!verb && rule.custom) {
    verb = rule.custom.kind;
    path = rule.custom.path;
  }
  return `${(verb || '?').toUpperCase()} ${path} body=${rule.body || ''}` +
         ` response_body=${rule.responseBody || ''}`;
}

const [snapshotPath, currentPath] = process.argv.slice(2);
const before = routesOf(snapshotPath);
const after = routesOf(currentPath);
let findings = 0;
for (const [method, keys] of before) {
  // A deleted RPC is buf breaking's finding already.
  if (!after.has(method)) continue;
  for (const key of keys) {
    if (!after.get(method).has(key)) {
      console.log(`${method}: previously present REST binding "${key}" ` +
                  'was removed or changed.');
      ++findings;
    }
  }
}
process.exit(findings ? 1 : 0);
