// Domain modules (core/domain.ts): the composition root orders them by needs/provides and refuses to start on a
// need nobody provides, on a circle of needs, or on a module using what it did not declare.
import t from 'tap';
import { defineDomain, orderModules, registerModules, type DomainModule, type SharedContext } from '../../server/src/core/domain.js';

// The services are typed by the Services interface; these tests use its real names with stand-in values.
const mod = (name: string, needs: string[], provides: string[], register: DomainModule['register'] = () => undefined): DomainModule =>
  ({ name, needs, provides, register }) as DomainModule;
const provider = (name: string, provides: string[], needs: string[] = []) =>
  mod(name, needs, provides, (ctx) => provides.forEach((s) => ctx.provide(s as never, { from: name } as never)));

t.test('modules are ordered after the providers of their needs, otherwise as given', async (t) => {
  const vm = mod('vm', ['hosts', 'networks'], ['vms']);
  const host = mod('host', [], ['hosts']);
  const network = mod('network', [], ['networks']);
  const zone = mod('zone', [], []);
  t.same(
    orderModules([vm, zone, host, network]).map((m) => m.name),
    ['host', 'network', 'vm', 'zone'],
  );
  t.same(
    orderModules([zone, host, network, vm]).map((m) => m.name),
    ['zone', 'host', 'network', 'vm'],
  );
});

t.test('a need nobody provides fails with a clear message', async (t) => {
  t.throws(() => orderModules([mod('vm', ['hosts'], ['vms'])]), { message: "domain 'vm' needs service 'hosts' that no domain provides" });
});

t.test('a circle of needs fails naming the circle', async (t) => {
  const a = mod('vm', ['hosts'], ['vms']);
  const b = mod('host', ['consoles'], ['hosts']);
  const c = mod('console', ['vms'], ['consoles']);
  t.throws(() => orderModules([a, b, c]), { message: 'domains need each other in a circle: vm → host → console → vm' });
});

t.test('a service provided twice fails', async (t) => {
  t.throws(() => orderModules([mod('a', [], ['hosts']), mod('b', [], ['hosts'])]), {
    message: "service 'hosts' is provided by both domain 'a' and domain 'b'",
  });
});

t.test('use and provide are checked against the declaration, also after registration', async (t) => {
  const services: Record<string, unknown> = {};
  let vmCtx: Parameters<DomainModule['register']>[0] | undefined;
  const shared = {} as SharedContext;
  const contexts = registerModules(
    [
      mod('vm', ['hosts'], ['vms'], (ctx) => {
        vmCtx = ctx;
        t.same(ctx.use('hosts'), { from: 'host' }, 'a declared need is there at registration');
        ctx.provide('vms', { from: 'vm' } as never);
        t.throws(() => ctx.provide('hosts', {} as never), { message: "domain 'vm' provides service 'hosts' without declaring it in provides" });
      }),
      provider('host', ['hosts']),
      provider('network', ['networks']),
    ],
    shared,
    services as never,
  );
  t.same(services, { hosts: { from: 'host' }, vms: { from: 'vm' }, networks: { from: 'network' } });
  t.equal(contexts.get('vm'), vmCtx);
  t.same(vmCtx!.use('vms'), { from: 'vm' }, 'a module uses its own services');
  t.throws(() => vmCtx!.use('networks'), { message: "domain 'vm' uses service 'networks' without declaring it in needs" });
});

t.test('a declared service left unprovided fails', async (t) => {
  t.throws(() => registerModules([mod('host', [], ['hosts'])], {} as SharedContext, {}), {
    message: "domain 'host' declares service 'hosts' in provides but did not provide it",
  });
});

t.test('defineDomain types use and provide from the declaration', async (t) => {
  const m = defineDomain({
    name: 'x',
    needs: ['hosts'],
    provides: ['vms'],
    register(ctx) {
      // @ts-expect-error — 'networks' is not declared
      void (() => ctx.use('networks'));
      // @ts-expect-error — 'hosts' is not this module's to provide
      void (() => ctx.provide('hosts', undefined as never));
      void (() => ctx.use('hosts'));
    },
  });
  t.same([m.needs, m.provides], [['hosts'], ['vms']]);
});
