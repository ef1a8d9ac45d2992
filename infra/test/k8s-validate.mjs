// Validates Kubernetes manifests against the API's own schemas: kubernetes-models (generated from
// Kubernetes' OpenAPI, checked on construction) is ESM-only, so jest runs this in a child process.
//   node k8s-validate.mjs FILE…   prints [{file, kind, name, errors: [...]}] as JSON
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';

const results = [];
for (const file of process.argv.slice(2)) {
  // YAML 1.1, as Kubernetes reads it (0440 is octal there).
  for (const doc of parseAllDocuments(readFileSync(file, 'utf8'), { version: '1.1' })) {
    const syntax = doc.errors.map((e) => e.message);
    const obj = syntax.length === 0 ? doc.toJS() : null;
    if (syntax.length === 0 && obj == null) continue; // an empty document
    const kind = obj?.kind ?? '?';
    const name = obj?.metadata?.name ?? '?';
    results.push({ file, kind, name, errors: syntax.length > 0 ? syntax : await validate(obj) });
  }
}
process.stdout.write(JSON.stringify(results));

async function validate(obj) {
  if (typeof obj.apiVersion !== 'string' || typeof obj.kind !== 'string') return ['no apiVersion or kind'];
  let Model;
  try {
    Model = (await import(`kubernetes-models/${obj.apiVersion}/${obj.kind}`))[obj.kind];
  } catch {
    return [`no schema for ${obj.apiVersion} ${obj.kind}`];
  }
  try {
    new Model(obj).validate();
    return [];
  } catch (err) {
    return err.errors?.map((e) => `${e.instancePath || '/'} ${e.message}`) ?? [String(err.message)];
  }
}
