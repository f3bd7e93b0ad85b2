// `npm start`: the management server built to JavaScript (dist/, scripts/build-server.mjs), rebuilt first when a
// source changed since the last build (checking costs a few ms; a rebuild about a second). Runs in the process npm
// starts (`exec node`), so no shell or loader process stays between npm and the server.
import { build, staleReason, SERVER_ENTRY } from './build-server.mjs';
import { pathToFileURL } from 'node:url';

const why = staleReason();
if (why) {
  const ms = await build();
  console.log(`built dist/ (${why}) in ${ms} ms`);
}
await import(pathToFileURL(SERVER_ENTRY).href);
