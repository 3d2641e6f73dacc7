// Reads [{ name, url, sdl }] as JSON on stdin, prints the composed supergraph SDL on stdout.
// Composes with both the Guild's composer (its supergraph is the one written) and Apollo's
// (@apollo/composition), so a team on Apollo's router or GraphOS can take the subgraphs as they are: an error
// from either fails. Errors go to stderr with exit code 1. Called by `parley compose`; pinned by
// package-lock.json.
import { composeServices as composeWithGuild } from '@theguild/federation-composition';
import { composeServices as composeWithApollo } from '@apollo/composition';
import { parse } from 'graphql';

let input = '';
process.stdin.setEncoding('utf8');
for await (const chunk of process.stdin) input += chunk;

const specs = JSON.parse(input);
const services = () => specs.map(({ name, url, sdl }) => ({ name, url, typeDefs: parse(sdl) }));
const guild = composeWithGuild(services());
const apollo = composeWithApollo(services());
let failed = false;
for (const [composer, result] of [['@theguild/federation-composition', guild], ['@apollo/composition', apollo]]) {
  for (const e of result.errors ?? []) {
    console.error(`${composer}: ${e.message}`);
    failed = true;
  }
}
if (failed) process.exit(1);
process.stdout.write(guild.supergraphSdl);
