// Console proxy agent: only connect/ping/echo so far; the WebSocket → VNC proxy comes later.
import type { AgentPart } from '../lib/handler.js'

export function consoleProxyPart(): AgentPart {
  let managementNodeUuid: string | undefined
  return {
    handlers: {
      ConsoleEcho: async () => ({}),
      ConsoleConnect: async (ctx) => {
        managementNodeUuid = ctx.body.managementNodeUuid ?? (ctx.target || undefined)
        return {}
      },
      ConsolePing: async () => (managementNodeUuid ? { managementNodeUuid } : {}),
    },
  }
}
