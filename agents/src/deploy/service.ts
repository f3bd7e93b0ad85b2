// Running the agent on the host: a systemd unit when systemd runs and we are root, otherwise a detached process
// whose pid the launcher writes to a pidfile. Both modes start the same launcher and log to the same file.
import { posix } from 'node:path';
import { sshOf, type DeployContext } from './context.js';
import { quote as q } from './layout.js';
import { runningFunction } from './probe.js';

export function usesSystemd(ctx: DeployContext): boolean {
  return Boolean(ctx.platform?.systemd && ctx.platform.uid === 0);
}

/** The agent's pid when it runs, else undefined. */
export async function runningPid(ctx: DeployContext): Promise<number | undefined> {
  const { layout, profile } = ctx.plan;
  const active = usesSystemd(ctx) ? `systemctl is-active --quiet ${profile.unitName} && ` : '';
  const script = `${runningFunction(ctx.plan)}; pid=$(cat ${q(layout.pidFile)} 2>/dev/null); ${active}running "$pid" && echo "$pid"`;
  const { stdout } = await sshOf(ctx).exec(script);
  const pid = Number.parseInt(stdout.trim(), 10);
  return Number.isInteger(pid) ? pid : undefined;
}

export async function restartAgent(ctx: DeployContext): Promise<void> {
  const ssh = sshOf(ctx);
  if (usesSystemd(ctx)) {
    await ssh.run(`systemctl restart ${ctx.plan.profile.unitName}`, 'systemctl restart');
    return;
  }
  const { layout } = ctx.plan;
  // TERM, then KILL after 5 s; give up after 10 s. setsid + nohup + redirected fds: the agent outlives this session.
  const script = [
    runningFunction(ctx.plan),
    `pid=$(cat ${q(layout.pidFile)} 2>/dev/null)`,
    'if running "$pid"; then',
    '  kill "$pid" 2>/dev/null',
    '  i=0',
    '  while running "$pid" && [ "$i" -lt 100 ]; do',
    '    i=$((i + 1)); if [ "$i" -eq 50 ]; then kill -9 "$pid" 2>/dev/null; fi; sleep 0.1',
    '  done',
    '  if running "$pid"; then echo "the running agent (pid $pid) did not stop" >&2; exit 1; fi',
    'fi',
    `mkdir -p ${q(posix.dirname(layout.pidFile))} ${q(posix.dirname(layout.logFile))} && rm -f ${q(layout.pidFile)} || exit 1`,
    'detach=; if command -v setsid >/dev/null 2>&1; then detach=setsid; fi',
    `$detach nohup ${q(layout.launcher)} </dev/null >>${q(layout.logFile)} 2>&1 &`,
  ].join('\n');
  await ssh.run(script, 'starting the agent');
}

/** The agent's last log lines, to explain why it did not come up. */
export async function agentLogTail(ctx: DeployContext, lines = 20): Promise<string> {
  const result = await sshOf(ctx)
    .exec(`tail -n ${lines} ${q(ctx.plan.layout.logFile)} 2>&1`)
    .catch(() => undefined);
  return result?.stdout.trim() || '(the agent wrote no log)';
}
