// The baseline for bench/query: a bare fastify server (its own process, like the management server) answering
// GET /zstack/v1/vm-instances with the bytes of a real QueryVmInstance reply, read once from the file given.
//
//   node --import tsx bench/query/bare-server.ts <reply.json>   → prints {"listening": "http://127.0.0.1:PORT"}
import { readFileSync } from 'node:fs';
import Fastify from 'fastify';

const body = readFileSync(process.argv[2]);
const app = Fastify({ logger: false });
app.get('/zstack/v1/vm-instances', (_req, reply) => {
  reply.code(200).header('content-type', 'application/json; charset=utf-8').send(body);
});
const url = await app.listen({ host: '127.0.0.1', port: 0 });
console.log(JSON.stringify({ listening: url }));
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
