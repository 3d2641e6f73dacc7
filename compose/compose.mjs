// Reads [{ name, url, sdl }] as JSON on stdin, prints the composed supergraph SDL on stdout.
// Errors go to stderr with exit code 1. Called by `parley compose`; pinned by package-lock.json.
import { composeServices } from '@theguild/federation-composition';
import { parse } from 'graphql';

let input = '';
process.stdin.setEncoding('utf8');
for await (const chunk of process.stdin) input += chunk;

const specs = JSON.parse(input);
const result = composeServices(specs.map(({ name, url, sdl }) => ({ name, url, typeDefs: parse(sdl) })));
if (result.errors?.length) {
  for (const e of result.errors) console.error(e.message);
  process.exit(1);
}
process.stdout.write(result.supergraphSdl);
