// A listener's options are 1.1's system tags on LoadBalancerListenerVO (LoadBalancerSystemTags), each with a global
// config giving its default (category `loadBalancer`, conf/globalConfig/lb.xml) and upstream's validator.
import type { DomainContext } from '../core/domain.js';
import { argErr } from '../core/errors.js';

export const BALANCE_ALGORITHMS = ['roundrobin', 'leastconn', 'source'];
const HEALTH_CHECK_PROTOCOLS = ['tcp'];

interface ListenerOption {
  token: string;
  format: string;
  defaultValue: string;
  description: string;
  /** Upstream's wording when the value is refused. */
  what: string;
  check?: (value: string, tag: string) => void;
}

const number = (what: string) => (value: string, tag: string) => {
  if (!/^\d{1,18}$/.test(value)) throw argErr(`invalid ${what}[${tag}], ${value} is not a number`);
};

const option = (token: string, defaultValue: string, description: string, what: string, check?: ListenerOption['check']): ListenerOption => ({
  token,
  format: `${token}::{${token}}`,
  defaultValue,
  description,
  what,
  check: check ?? number(what),
});

export const LISTENER_OPTIONS: ListenerOption[] = [
  option('connectionIdleTimeout', '60', 'Seconds without data after which the load balancer closes both sides of a connection', 'connection idle timeout'),
  option('healthyThreshold', '2', 'Consecutive successful health checks that make a backend healthy', 'healthy threshold'),
  option('healthCheckInterval', '5', 'Seconds between health checks of a backend', 'health check interval'),
  option('healthCheckTarget', 'tcp:default', 'What a health check probes: protocol:port (tcp:default = the instance port)', 'health target', (value, tag) => {
    const parts = value.split(':');
    if (parts.length !== 2) throw argErr(`invalid health target[${tag}], the format is targetCheckProtocol:port, for example, tcp:default`);
    const [protocol, port] = parts;
    if (!HEALTH_CHECK_PROTOCOLS.includes(protocol)) {
      throw argErr(
        `invalid health target[${tag}], the target checking protocol[${protocol}] is invalid, valid protocols are [${HEALTH_CHECK_PROTOCOLS.join(', ')}]`,
      );
    }
    if (port === 'default') return;
    if (!/^\d{1,5}$/.test(port)) throw argErr(`invalid invalid health target[${tag}], port[${port}] is not a number`);
    if (Number(port) < 1 || Number(port) > 65535) throw argErr(`invalid invalid health target[${tag}], port[${port}] is not in the range of [1, 65535]`);
  }),
  option('healthCheckTimeout', '2', 'Seconds without an answer after which a health check failed', 'healthy timeout'),
  option('unhealthyThreshold', '2', 'Consecutive failed health checks that make a backend unhealthy', 'unhealthy threshold'),
  option('maxConnection', '5000', 'Concurrent connections a listener accepts', 'max connection'),
  option('balancerAlgorithm', 'roundrobin', 'How connections are spread: roundrobin, leastconn or source', 'balance algorithm', (value) => {
    if (!BALANCE_ALGORITHMS.includes(value)) throw argErr(`invalid balance algorithm[${value}], valid algorithms are [${BALANCE_ALGORITHMS.join(', ')}]`);
  }),
];

/** The options' global configs and system tags (and 1.1's `separateVirtualRouterVm`, accepted and not acted on). */
export function defineListenerOptions(app: DomainContext): void {
  for (const o of LISTENER_OPTIONS) {
    app.globalConfig.define({
      category: 'loadBalancer',
      name: o.token,
      type: 'string',
      defaultValue: o.defaultValue,
      description: o.description,
      ...(o.token === 'balancerAlgorithm' ? { validValues: BALANCE_ALGORITHMS } : {}),
    });
    app.tags.define({
      resourceType: 'LoadBalancerListenerVO',
      format: o.format,
      validate: async (tokens, ctx) => o.check?.(tokens[o.token], ctx.tag),
    });
  }
  app.tags.define({ resourceType: 'LoadBalancerVO', format: 'separateVirtualRouterVm' });
}
