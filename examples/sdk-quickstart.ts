// The SDK in five minutes, against a running server (`npm start`):
//   npx tsx examples/sdk-quickstart.ts
// Environment: ZSTACK_ENDPOINT (http://127.0.0.1:8080), ZSTACK_ACCOUNT_NAME (admin), ZSTACK_PASSWORD (password).
// Leaves nothing behind: the zones it creates are deleted at the end.
import { ZStackClient, ZStackError, isNotFound, type JobHandle } from '../sdk/src/index.js';

const zs = new ZStackClient({
  endpoint: process.env.ZSTACK_ENDPOINT ?? 'http://127.0.0.1:8080',
  accountName: process.env.ZSTACK_ACCOUNT_NAME ?? 'admin',
  password: process.env.ZSTACK_PASSWORD ?? 'password', // hashed (SHA-512) before it is sent
  // Logging hooks see every HTTP exchange with the session and passwords redacted.
  hooks: process.env.DEBUG
    ? { onRequest: (e) => console.error(`> ${e.curl}`), onResponse: (e) => console.error(`< ${e.status} ${e.method} ${e.url} (${e.durationMs} ms)`) }
    : undefined,
});

const suffix = Date.now().toString(36);

// 1. Asynchronous APIs wait for their job (login happens on first use). Replies are typed from the spec.
const { inventory: zone } = await zs.createZone({ name: `quickstart-${suffix}`, description: 'made by sdk-quickstart' });
console.log(`1. created zone ${zone.name} (${zone.uuid}), state ${zone.state}`);

// 2. Or start the job and wait later — even from another process: the handle is plain JSON.
const handle: JobHandle<'CreateZone'> = await zs.startCreateZone({ name: `quickstart-${suffix}-b` });
const { inventory: zoneB } = await zs.waitJob(JSON.parse(JSON.stringify(handle)) as typeof handle, {
  onProgress: (p) => console.log(`   …job ${p.jobUuid} running for ${p.elapsedMs} ms`),
});
console.log(`2. job ${handle.jobUuid} created zone ${zoneB.name}`);

// 3. Queries: conditions as ZStack strings or as an object; fields, count, sort.
const byString = await zs.queryZone({ q: [`name=${zone.name}`], fields: 'uuid,name' });
const byObject = await zs.queryZone({ q: { name: { '~=': `quickstart-${suffix}%` } }, sort: '-name', fields: ['name'] });
const { total } = await zs.queryZone({ count: true });
console.log(`3. ${byString.inventories!.length} by string, ${byObject.inventories!.map((z) => z.name).join(', ')} by object; ${total} zones in all`);

// 4. Every row, page by page (start/limit under the hood).
let n = 0;
for await (const z of zs.queryAllZone({ fields: ['uuid'] }, { pageSize: 100 })) if (z.uuid) n++;
console.log(`4. iterated ${n} zones`);

// 5. Errors carry the server's ErrorCode, the HTTP status, the API and job, and the cause chain.
try {
  await zs.updateZone({ uuid: '0'.repeat(32), name: 'nope' });
} catch (e) {
  if (!(e instanceof ZStackError) || !isNotFound(e)) throw e;
  console.log(`5. ${e.apiName} failed: ${e.code} (HTTP ${e.httpStatus}) ${e.details}`);
}

// 6. Per-call options: an API timeout (sent as X-API-Timeout), cancellation, your own job uuid for idempotency.
const controller = new AbortController();
const renamed = await zs.updateZone({ uuid: zone.uuid, name: `${zone.name}-renamed` }, { timeoutMs: 60_000, signal: controller.signal });
console.log(`6. renamed to ${renamed.inventory.name}`);

// 7. Any call as curl (session redacted unless { redact: false }).
console.log(`7. ${zs.toCurl('QueryZone', { q: { name: zone.name } })}`);

for (const uuid of [zone.uuid, zoneB.uuid]) await zs.deleteZone({ uuid });
await zs.logout();
console.log('done: zones deleted, logged out');
