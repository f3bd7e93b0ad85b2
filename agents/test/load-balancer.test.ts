// The virtual router's load balancer commands without a server: the haproxy configuration a listener implies
// (options from its tags, defaults for the rest, nothing injected through a tag), and on a namespace router the
// configuration files written and removed (this machine has no haproxy, so the files are all there is).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import type { Ctx } from '../src/lib/handler.js';
import { RouterNamespaces } from '../src/network/router-namespace.js';
import { haproxyConfig, loadBalancerHandlers, type LbTO } from '../src/virtual-router/load-balancer.js';
import { VirtualRouters } from '../src/virtual-router/state.js';

const to: LbTO = {
  lbUuid: 'lb1',
  listenerUuid: 'listener1',
  vip: '172.20.0.10',
  nicIps: ['10.0.0.5', '10.0.0.6'],
  instancePort: 8080,
  loadBalancerPort: 80,
  mode: 'http',
  parameters: ['balancerAlgorithm::source', 'healthCheckTarget::tcp:default', 'maxConnection::100'],
};

t.test('the haproxy configuration of a listener', async (t) => {
  const conf = haproxyConfig(to);
  t.match(conf, /maxconn 100\n/);
  t.match(conf, /listen listener1\n {4}mode http\n/);
  t.match(conf, /balance source\n/);
  t.match(conf, /bind 172\.20\.0\.10:80\n/);
  t.match(conf, /server nic-10\.0\.0\.5 10\.0\.0\.5:8080 check port 8080 inter 5s rise 2 fall 2\n/, 'defaults for the options not given');
  t.match(conf, /timeout client 60s/);
  const injected = haproxyConfig({ ...to, parameters: ['balancerAlgorithm::roundrobin\n    stats enable'] });
  t.notMatch(injected, /stats enable/, 'a tag value that is not one token is ignored');
  t.match(injected, /balance roundrobin\n/);
});

const sh = promisify(execFile);
const haproxy = await sh('haproxy', ['-v']).then(
  () => true,
  () => false,
);

t.test(
  'a namespace router: configuration files written, replaced and removed',
  { skip: haproxy ? 'haproxy is installed: it would run' : undefined },
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'zstack-lb-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const routers = new VirtualRouters(true);
    const namespaces = new RouterNamespaces(dir);
    const handlers = loadBalancerHandlers(routers, namespaces);
    const ctx = (body: { lbs: LbTO[] }) => ({ body, target: 'vr1', signal: new AbortController().signal }) as unknown as Ctx<'VirtualRouterRefreshLb'>;
    const file = join(namespaces.of('vr1').dir, 'haproxy', 'lb1-listener1.cfg');

    await handlers.VirtualRouterRefreshLb!(ctx({ lbs: [to] }));
    t.equal(await readFile(file, 'utf8'), haproxyConfig(to));
    t.same([...routers.get('vr1')!.lb!.keys()], ['listener1']);

    await handlers.VirtualRouterRefreshLb!(ctx({ lbs: [{ ...to, nicIps: ['10.0.0.7'] }] }));
    t.match(await readFile(file, 'utf8'), /server nic-10\.0\.0\.7 /);

    await handlers.VirtualRouterRefreshLb!(ctx({ lbs: [{ ...to, nicIps: [] }] }));
    t.notOk(existsSync(file), 'no backend left: the listener is removed');
    t.same([...routers.get('vr1')!.lb!.keys()], []);

    await handlers.VirtualRouterRefreshLb!(ctx({ lbs: [to] }));
    await (handlers.VirtualRouterDeleteLb as unknown as (c: unknown) => Promise<unknown>)(ctx({ lbs: [to] }));
    t.notOk(existsSync(file), '/lb/delete removes it');
  },
);
