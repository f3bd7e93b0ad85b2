// The getting-started page at /zstack/docs/getting-started: install, start, log in, and a first VM from an empty
// server (zone → VM) with the SDK and with zstack-cli. The two programs are exported so that
// test/docs/getting-started.test.ts runs exactly what the page shows against a live server.

import { escapeHtml, htmlPage } from './html.js';

/** From an empty server (with `npm start`'s simulator agent) to a running VM, through the TypeScript SDK. */
export const FIRST_VM_SDK = `import { ZStackClient } from '@zstack-ts/sdk';

const zs = new ZStackClient({ endpoint: 'http://localhost:8080', accountName: 'admin', password: 'password' });

const zone = (await zs.createZone({ name: 'zone1' })).inventory;
const cluster = (await zs.createCluster({ zoneUuid: zone.uuid, name: 'cluster1', hypervisorType: 'Simulator' })).inventory;
await zs.addSimulatorHost({ clusterUuid: cluster.uuid, name: 'host1', managementIp: '192.168.0.10', cpuCapacity: 8, memoryCapacity: 8 * 2 ** 30 });

const ps = (await zs.addSimulatorPrimaryStorage({ zoneUuid: zone.uuid, name: 'ps1', url: '/zstack_ps', totalCapacity: 2 ** 40, availableCapacity: 2 ** 40 })).inventory;
await zs.attachPrimaryStorageToCluster({ clusterUuid: cluster.uuid, primaryStorageUuid: ps.uuid });
const bs = (await zs.addSimulatorBackupStorage({ name: 'bs1', url: '/zstack_bs', totalCapacity: 2 ** 40, availableCapacity: 2 ** 40 })).inventory;
await zs.attachBackupStorageToZone({ zoneUuid: zone.uuid, backupStorageUuid: bs.uuid });
const image = (await zs.addImage({ name: 'image1', url: 'http://example.com/image1.qcow2', format: 'qcow2', mediaType: 'RootVolumeTemplate', platform: 'Linux', backupStorageUuids: [bs.uuid] })).inventory;
const offering = (await zs.createInstanceOffering({ name: 'small', cpuNum: 1, memorySize: 128 * 2 ** 20 })).inventory;

const l2 = (await zs.createL2NoVlanNetwork({ zoneUuid: zone.uuid, name: 'l2', physicalInterface: 'eth0' })).inventory;
await zs.attachL2NetworkToCluster({ l2NetworkUuid: l2.uuid, clusterUuid: cluster.uuid });
const l3 = (await zs.createL3Network({ l2NetworkUuid: l2.uuid, name: 'l3' })).inventory;
await zs.addIpRange({ l3NetworkUuid: l3.uuid, name: 'range1', startIp: '10.0.0.10', endIp: '10.0.0.100', netmask: '255.255.255.0', gateway: '10.0.0.1' });
await zs.attachNetworkServiceToL3Network({ l3NetworkUuid: l3.uuid, networkServices: { Flat: ['DHCP'] } });

const vm = (await zs.createVmInstance({ name: 'vm1', instanceOfferingUuid: offering.uuid, imageUuid: image.uuid, l3NetworkUuids: [l3.uuid] })).inventory;
console.log(\`\${vm.name} is \${vm.state} with IP \${vm.vmNics[0].ip}\`);
`;

/** The same with zstack-cli (jq picks the uuids out of the replies). */
export const FIRST_VM_CLI = `zstack-cli LogInByAccount accountName=admin password=password
uuid() { jq -r .inventory.uuid; }

ZONE=$(zstack-cli CreateZone name=zone1 | uuid)
CLUSTER=$(zstack-cli CreateCluster zoneUuid=$ZONE name=cluster1 hypervisorType=Simulator | uuid)
zstack-cli AddSimulatorHost clusterUuid=$CLUSTER name=host1 managementIp=192.168.0.10 cpuCapacity=8 memoryCapacity=8589934592 > /dev/null

PS=$(zstack-cli AddSimulatorPrimaryStorage zoneUuid=$ZONE name=ps1 url=/zstack_ps totalCapacity=1099511627776 availableCapacity=1099511627776 | uuid)
zstack-cli AttachPrimaryStorageToCluster clusterUuid=$CLUSTER primaryStorageUuid=$PS > /dev/null
BS=$(zstack-cli AddSimulatorBackupStorage name=bs1 url=/zstack_bs totalCapacity=1099511627776 availableCapacity=1099511627776 | uuid)
zstack-cli AttachBackupStorageToZone zoneUuid=$ZONE backupStorageUuid=$BS > /dev/null
IMAGE=$(zstack-cli AddImage name=image1 url=http://example.com/image1.qcow2 format=qcow2 mediaType=RootVolumeTemplate platform=Linux backupStorageUuids=$BS | uuid)
OFFERING=$(zstack-cli CreateInstanceOffering name=small cpuNum=1 memorySize=134217728 | uuid)

L2=$(zstack-cli CreateL2NoVlanNetwork zoneUuid=$ZONE name=l2 physicalInterface=eth0 | uuid)
zstack-cli AttachL2NetworkToCluster l2NetworkUuid=$L2 clusterUuid=$CLUSTER > /dev/null
L3=$(zstack-cli CreateL3Network l2NetworkUuid=$L2 name=l3 | uuid)
zstack-cli AddIpRange l3NetworkUuid=$L3 name=range1 startIp=10.0.0.10 endIp=10.0.0.100 netmask=255.255.255.0 gateway=10.0.0.1 > /dev/null
zstack-cli AttachNetworkServiceToL3Network l3NetworkUuid=$L3 networkServices='{"Flat":["DHCP"]}' > /dev/null

zstack-cli CreateVmInstance name=vm1 instanceOfferingUuid=$OFFERING imageUuid=$IMAGE l3NetworkUuids=$L3 \\
  | jq -r '.inventory | "\\(.name) is \\(.state) with IP \\(.vmNics[0].ip)"'
`;

const code = (s: string) => `<pre><code>${escapeHtml(s.trimEnd())}</code></pre>`;

export function gettingStartedPage(title: string, prefix: string): string {
  return htmlPage(
    `${title}: getting started`,
    `
  body { margin: 1em auto; max-width: 60em; padding: 0 1em; font-family: system-ui, sans-serif; line-height: 1.45; }
  pre { background: #f6f8fa; padding: 0.8em; overflow-x: auto; font-size: 13px; }
  code { font-family: ui-monospace, monospace; }
`,
    `
<p><a href="${prefix}">API reference</a> · <a href="${prefix}/errors">Error codes</a> · <a href="${prefix}/openapi.json">OpenAPI spec</a></p>
<h1>Getting started</h1>

<h2 id="install">1. Install and start</h2>
<p>Node.js 20 or later. From a clone of the repository:</p>
${code(`npm install
npm start          # the server on an embedded PostgreSQL in ./data, on http://127.0.0.1:8080,
                   # with a simulator agent: simulated hosts and storage, no hypervisor needed`)}
<p>The SDK and zstack-cli in another project (until they are published, from the tarball <code>npm pack -w sdk</code> writes):</p>
${code(`npm install /path/to/zstack-ts-sdk-0.1.0.tgz      # @zstack-ts/sdk, with the zstack-cli command
# in the repository itself: alias zstack-cli='npx zstack-cli'`)}

<h2 id="login">2. Log in</h2>
<p>The account <code>admin</code>, password <code>password</code>. The SDK logs in by itself on its first call (and again
when the session expires); zstack-cli keeps its session in <code>~/.zstack/cli/session</code>; with curl, the
password goes as its SHA-512 hex and the reply's <code>inventory.uuid</code> is the session:</p>
${code(`zstack-cli LogInByAccount accountName=admin password=password

SESSION=$(curl -s -X PUT http://localhost:8080/zstack/v1/accounts/login -H 'Content-Type: application/json' \\
  -d "{\\"logInByAccount\\":{\\"accountName\\":\\"admin\\",\\"password\\":\\"$(printf password | sha512sum | cut -d' ' -f1)\\"}}" | jq -r .inventory.uuid)
curl "http://localhost:8080/zstack/v1/zones?limit=10" -H "Authorization: OAuth $SESSION"`)}
<p>Every operation of the <a href="${prefix}">API reference</a> shows the same three forms (curl, TypeScript SDK,
zstack-cli) for its own call.</p>

<h2 id="first-vm">3. From an empty server to a running VM</h2>
<p>A zone, a cluster with one simulated host, primary and backup storage, an image, an instance offering, an L2 and an
L3 network with an IP range and Flat DHCP, and the VM. With the TypeScript SDK (an ES module:
<code>npx tsx first-vm.ts</code>, or <code>node first-vm.mjs</code> without the types):</p>
${code(FIRST_VM_SDK)}
<p>With zstack-cli, in a shell (<code>jq</code> picks the uuids out of the replies):</p>
${code(FIRST_VM_CLI)}
<p>Both print <code>vm1 is Running with IP 10.0.0.…</code>. Asynchronous APIs (most of those above) are jobs: the SDK
and the CLI wait for them; with curl, see the <code>Prefer: wait</code> header in each operation's sample.</p>

<h2 id="next">4. Next</h2>
<ul>
<li><code>npx tsx examples/tryout.ts</code>: two simulated hosts, the release notes' §9 starting point (an L3 network
whose DHCP and DNS come from the VirtualRouter provider, served by a virtual router VM), two VMs, a volume and a NIC
hot-plugged while they run; its last line is the next command, with the L3's uuid:</li>
<li><code>npx tsx examples/section9-migration.ts &lt;l3NetworkUuid&gt;</code>: §9 itself — move that L3 from the
VirtualRouter provider to the Flat provider (the same eight steps work with zstack-cli).</li>
<li><code>examples/pulumi-flat-network/</code>: the §9 end state as a Pulumi program (<code>@zstack-ts/pulumi</code>).</li>
<li>Errors are <code>{"error": {"code", "description", "details"}}</code>; every code is in the
<a href="${prefix}/errors">error catalogue</a>. The SDK throws <code>ZStackError</code> with the code, the HTTP status,
the API name and its job's uuid, or for a call without a job its request id (<code>X-Request-Id</code>, the
<code>reqId</code> of the server's log line).</li>
</ul>
`,
  );
}
